build/afile.o: core/afile.c core/afile.h core/err.h core/mem.h \
 core/signals.h core/slm.h
core/afile.h:
core/err.h:
core/mem.h:
core/signals.h:
core/slm.h:
