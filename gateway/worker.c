/* worker.c - stub, being written. */
