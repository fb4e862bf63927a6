build/test_core.o: tests/test_core.c core/afile.h core/err.h core/dtype.h \
 core/mapfile.h core/mem.h core/tensor.h tests/testutil.h
core/afile.h:
core/err.h:
core/dtype.h:
core/mapfile.h:
core/mem.h:
core/tensor.h:
tests/testutil.h:
