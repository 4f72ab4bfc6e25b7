/* hub.c - stub, being written. */
