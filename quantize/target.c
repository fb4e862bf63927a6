/* target.c - greedy Lagrangian allocation of tensor types under a byte budget (target.h). */
#include "target.h"

static uint64_t pad(uint64_t n, uint64_t a) { return a > 1 ? (n + a - 1) / a * a : n; }

int slm_target_allocate(const slm_target_tensor *t, size_t n, uint64_t fixed, uint64_t align, uint64_t target, int *choice,
                        uint64_t *size, slm_err *err) {
    uint64_t total = fixed;
    for (size_t i = 0; i < n; i++) {
        if (t[i].n_cand < 1 || t[i].n_cand > SLM_TARGET_MAX_CAND)
            return slm_errf(err, SLM_E_ARG, "target: tensor %zu has %d candidate types", i, t[i].n_cand);
        choice[i] = 0;
        total += pad(t[i].bytes[0], align);
    }
    if (total > target)
        return slm_errf(err, SLM_E_ARG, "target of %llu bytes is smaller than the smallest possible file (%llu bytes)",
                        (unsigned long long)target, (unsigned long long)total);
    for (;;) {
        double best = 0;
        size_t bi = n;
        int bc = 0;
        for (size_t i = 0; i < n; i++) {
            const int c = choice[i];
            const uint64_t cur = pad(t[i].bytes[c], align);
            for (int k = c + 1; k < t[i].n_cand; k++) {
                const uint64_t nb = pad(t[i].bytes[k], align);
                const double gain = t[i].err[c] - t[i].err[k];
                if (nb <= cur || total - cur + nb > target || gain <= 0) continue;
                const double r = gain / (double)(nb - cur);
                if (r > best) best = r, bi = i, bc = k;
            }
        }
        if (bi == n) break;
        total += pad(t[bi].bytes[bc], align) - pad(t[bi].bytes[choice[bi]], align);
        choice[bi] = bc;
    }
    *size = total;
    return SLM_OK;
}
