#ifndef MN_GW_H
#define MN_GW_H
#endif
