#ifndef MN_WORKER_H
#define MN_WORKER_H
#endif
