/* sign.c - stub, being written. */
