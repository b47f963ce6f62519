#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

// Debian's libhiredis-dev (hiredis 0.14) installs its headers under /usr/include/hiredis.
#include <hiredis/hiredis.h>

/// The reader's error text; `redisReaderGetError` is a macro Swift cannot call.
static inline const char *CHiredis_readerError(const redisReader *reader) {
    return reader->errstr;
}

#endif
