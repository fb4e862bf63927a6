build/thread.o: core/thread.c core/thread.h
core/thread.h:
