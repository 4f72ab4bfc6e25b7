/* msg.c - stub, being written. */
