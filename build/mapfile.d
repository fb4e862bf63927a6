build/mapfile.o: core/mapfile.c core/mapfile.h core/err.h core/mem.h
core/mapfile.h:
core/err.h:
core/mem.h:
