#ifndef MN_HUB_H
#define MN_HUB_H
#endif
