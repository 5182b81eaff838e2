// tensor/dot_avx2.c — AVX2 + FMA + F16C kernels (compiled with those flags; called only when the CPU has them).
#include "tensor/kernels.h"

const hn_kernel_set hn_kernels_avx2 = {0};
