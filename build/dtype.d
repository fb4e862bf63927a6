build/dtype.o: core/dtype.c core/dtype.h core/le.h core/slm.h
core/dtype.h:
core/le.h:
core/slm.h:
