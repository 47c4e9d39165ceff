// zlib, used to read gzip-compressed IDX files (Fashion-MNIST).
#include <zlib.h>
