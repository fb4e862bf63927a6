build/signals.o: core/signals.c core/signals.h
core/signals.h:
