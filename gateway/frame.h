#ifndef MN_FRAME_H
#define MN_FRAME_H
#endif
