build/mem.o: core/mem.c core/mem.h core/err.h core/slm.h
core/mem.h:
core/err.h:
core/slm.h:
