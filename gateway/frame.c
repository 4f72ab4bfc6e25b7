/* frame.c - stub, being written. */
