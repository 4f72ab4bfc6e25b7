/* ws.c - stub, being written. */
