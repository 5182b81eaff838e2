// tensor/dot_avx512.c — AVX-512 (F, BW, VL, DQ) + VNNI kernels.
#include "tensor/kernels.h"

const hn_kernel_set hn_kernels_avx512 = {0};
