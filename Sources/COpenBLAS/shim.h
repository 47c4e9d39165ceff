// OpenBLAS's CBLAS interface; its cblas.h also declares openblas_set_num_threads & co.
#include <cblas.h>
