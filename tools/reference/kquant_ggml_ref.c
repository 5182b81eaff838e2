// tools/reference/kquant_ggml_ref.c — ggml's own K-quantizers (quantize_row_q*_K_ref in llama.cpp's ggml-base) on
// fp32 rows, for tools/reference/kquant_ref.py, which builds and runs it when a llama.cpp build is at hand:
//
//   gcc -O2 -I$LLAMA/ggml/include tools/reference/kquant_ggml_ref.c $BUILD/ggml/src/libggml-base.a -fopenmp -lm \
//       -lpthread -lstdc++ -o /tmp/kquant_ggml_ref
//   /tmp/kquant_ggml_ref TYPE IN.f32 OUT.bin      (TYPE: ggml type number 10..14; IN: n floats, n % 256 == 0)
//
// Not part of hone (it links ggml); only a reference-data generator.
#include "ggml.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: kquant_ggml_ref TYPE IN.f32 OUT.bin\n");
        return 2;
    }
    enum ggml_type t = (enum ggml_type)atoi(argv[1]);
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    float *x = malloc((size_t)n * 4);
    if (fread(x, 4, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
    size_t bytes = ggml_row_size(t, n);
    void *q = malloc(bytes);
    const struct ggml_type_traits *tt = ggml_get_type_traits(t);
    if (!tt->from_float_ref || n % ggml_blck_size(t)) return 1;
    tt->from_float_ref(x, q, n);
    FILE *o = fopen(argv[3], "wb");
    if (!o || fwrite(q, 1, bytes, o) != bytes) return 1;
    fclose(o);
    return 0;
}
