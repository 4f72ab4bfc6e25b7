/* chan.c - stub, being written. */
