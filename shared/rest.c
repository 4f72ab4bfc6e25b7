/* rest.c - stub, being written. */
