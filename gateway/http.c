/* http.c - stub, being written. */
