build/tensor.o: core/tensor.c core/tensor.h core/err.h core/slm.h
core/tensor.h:
core/err.h:
core/slm.h:
