// tests/test_sample.c — the samplers on fixed logits: greedy, top-k, top-p, min-p, temperature, the distribution a
// draw follows, seed determinism, and llama.cpp's repetition-penalty rule.
#include "model/sample.h"
#include "test.h"

#include <math.h>
#include <string.h>

static hn_sampler_params plain(float temp) {
    hn_sampler_params p = hn_sampler_default_params();
    p.temp = temp, p.top_k = 0, p.top_p = 1, p.min_p = 0, p.repeat_penalty = 1;
    return p;
}

// Counts of each token over n draws.
static void draw(const hn_sampler_params *p, const float *logits, int V, int n, int *count) {
    hn_sampler *s = hn_sampler_create(p, V);
    memset(count, 0, V * sizeof *count);
    for (int i = 0; i < n; i++) {
        int32_t id = hn_sampler_sample(s, logits, NULL, 0);
        if (id >= 0 && id < V) count[id]++;
    }
    hn_sampler_destroy(s);
}

// Logits whose softmax is exactly probs (up to rounding).
static void from_probs(const double *probs, float *logits, int V) {
    for (int i = 0; i < V; i++) logits[i] = (float)log(probs[i]);
}

int main(void) {
    enum { V = 6 };
    const double probs[V] = {0.40, 0.25, 0.15, 0.10, 0.06, 0.04};
    float lg[V], keep[V];
    from_probs(probs, lg, V);
    memcpy(keep, lg, sizeof lg);
    int cnt[V];

    // Greedy: the argmax; the lowest id on a tie.
    hn_sampler_params p = plain(0);
    hn_sampler *s = hn_sampler_create(&p, V);
    float shuffled[V] = {0.1f, 3.0f, -2.0f, 3.5f, 1.0f, 0.0f}, tie[V] = {1, 5, 2, 5, 0, 0};
    CHECK(hn_sampler_sample(s, shuffled, NULL, 0) == 3, "greedy picks the argmax");
    CHECK(hn_sampler_sample(s, tie, NULL, 0) == 1, "greedy tie goes to the lowest id");
    hn_sampler_destroy(s);

    // No filter, temperature 1: frequencies follow the softmax (fixed seed, so this is exact and not flaky).
    p = plain(1);
    p.seed = 42;
    int N = 40000;
    draw(&p, lg, V, N, cnt);
    for (int i = 0; i < V; i++)
        CHECK(fabs(cnt[i] / (double)N - probs[i]) < 0.01, "token %d drawn %.4f, expected %.2f", i, cnt[i] / (double)N,
              probs[i]);
    CHECK(!memcmp(keep, lg, sizeof lg), "the sampler must not change the caller's logits");

    // Top-k keeps the k best, and all of them get drawn.
    p = plain(1);
    p.top_k = 3;
    draw(&p, lg, V, 3000, cnt);
    CHECK(cnt[0] && cnt[1] && cnt[2] && !cnt[3] && !cnt[4] && !cnt[5], "top-k 3: %d %d %d %d %d %d", cnt[0], cnt[1],
          cnt[2], cnt[3], cnt[4], cnt[5]);
    p.top_k = 1;
    draw(&p, lg, V, 200, cnt);
    CHECK(cnt[0] == 200, "top-k 1 is greedy");

    // Top-p: the smallest set whose probability reaches p (0.40 + 0.25 = 0.65 >= 0.6 -> two tokens; 0.7 -> three).
    p = plain(1);
    p.top_p = 0.6f;
    draw(&p, lg, V, 3000, cnt);
    CHECK(cnt[0] && cnt[1] && !cnt[2] && !cnt[3], "top-p 0.6: %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
    p.top_p = 0.7f;
    draw(&p, lg, V, 3000, cnt);
    CHECK(cnt[0] && cnt[1] && cnt[2] && !cnt[3], "top-p 0.7: %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
    // Renormalised over the kept tokens: 0.40 / 0.65 and 0.25 / 0.65.
    p.top_p = 0.6f;
    draw(&p, lg, V, N, cnt);
    CHECK(fabs(cnt[0] / (double)N - 0.40 / 0.65) < 0.01, "top-p renormalises: %.4f", cnt[0] / (double)N);

    // Min-p: keeps p_i >= min_p * p_max. 0.3 * 0.40 = 0.12 keeps {0.40, 0.25, 0.15}; 0.2 -> 0.08 adds 0.10.
    p = plain(1);
    p.min_p = 0.3f;
    draw(&p, lg, V, 3000, cnt);
    CHECK(cnt[0] && cnt[1] && cnt[2] && !cnt[3], "min-p 0.3: %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
    p.min_p = 0.2f;
    draw(&p, lg, V, 3000, cnt);
    CHECK(cnt[3] && !cnt[4] && !cnt[5], "min-p 0.2: %d %d %d", cnt[3], cnt[4], cnt[5]);

    // Temperature: low sharpens (always the best), high flattens.
    p = plain(0.01f);
    draw(&p, lg, V, 500, cnt);
    CHECK(cnt[0] == 500, "temperature 0.01 draws the best token (%d of 500)", cnt[0]);
    p = plain(100);
    draw(&p, lg, V, N, cnt);
    CHECK(fabs(cnt[5] / (double)N - 1.0 / V) < 0.02, "temperature 100 is near uniform (%.4f)", cnt[5] / (double)N);

    // Seeds: the same seed gives the same sequence, another seed another one.
    hn_sampler_params a = hn_sampler_default_params(), b = a;
    a.top_k = b.top_k = 0, a.min_p = b.min_p = 0, a.top_p = b.top_p = 1;
    b.seed = 7;
    hn_sampler *s1 = hn_sampler_create(&a, V), *s2 = hn_sampler_create(&a, V), *s3 = hn_sampler_create(&b, V);
    bool same = true, differ = false;
    for (int i = 0; i < 200; i++) {
        int32_t x = hn_sampler_sample(s1, lg, NULL, 0), y = hn_sampler_sample(s2, lg, NULL, 0),
                z = hn_sampler_sample(s3, lg, NULL, 0);
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same, "same seed, same draws");
    CHECK(differ, "another seed, other draws");
    hn_sampler_destroy(s1), hn_sampler_destroy(s2), hn_sampler_destroy(s3);

    // Repetition penalty (llama.cpp): positive logits divided, negative multiplied, each distinct token once, only
    // within the last repeat_last_n tokens.
    p = plain(0);
    p.repeat_penalty = 1.5f;
    s = hn_sampler_create(&p, 2);
    float pos2[2] = {2.0f, 1.2f}, neg2[2] = {-1.0f, -1.4f};
    int32_t r00[2] = {0, 0}, r0[1] = {0};
    CHECK(hn_sampler_sample(s, pos2, r00, 2) == 0, "a repeated token is penalised once (2.0/1.5 > 1.2)");
    CHECK(hn_sampler_sample(s, neg2, r0, 1) == 1, "a negative logit is multiplied (-1.5 < -1.4)");
    CHECK(hn_sampler_sample(s, neg2, NULL, 0) == 0, "no history, no penalty");
    hn_sampler_destroy(s);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    s = hn_sampler_create(&p, 3);
    float three[3] = {3.0f, 2.0f, 1.0f};
    int32_t old0[3] = {0, 2, 2}, new0[3] = {2, 0, 2};
    CHECK(hn_sampler_sample(s, three, old0, 3) == 0, "token 0 is outside the last 2 tokens: no penalty");
    CHECK(hn_sampler_sample(s, three, new0, 3) == 1, "token 0 within the window: 3.0/2 < 2.0");
    CHECK(hn_sampler_sample(s, three, new0, 3) == 1, "the penalty does not accumulate across calls");
    hn_sampler_destroy(s);

    // Bad parameters are refused with a message.
    p = plain(1);
    p.top_p = 0;
    CHECK(hn_sampler_create(&p, V) == NULL && strstr(hn_errmsg(), "top_p"), "top_p 0 refused: %s", hn_errmsg());
    p = plain(-1);
    CHECK(hn_sampler_create(&p, V) == NULL, "negative temperature refused");
    // A large vocabulary (over 4 x 256), where draws without top-k sort only the best candidates: the draw still follows the
    // softmax; top-p keeps only the nucleus; a flat distribution (the prefix holds too little mass) still reaches
    // every token.
    {
        enum { BV = 2048, DRAWS = 8000 };
        static float big[BV];
        static int bc[BV];
        double z = 0;
        for (int i = 0; i < BV; i++) z += exp(big[i] = -0.05f * (float)i);
        hn_sampler_params q = plain(1.0f);
        draw(&q, big, BV, DRAWS, bc);
        double worst = 0;
        for (int i = 0; i < 8; i++) {
            double d = fabs(bc[i] / (double)DRAWS - exp(big[i]) / z);
            worst = d > worst ? d : worst;
        }
        CHECK(worst < 0.01, "large vocabulary: frequencies of the 8 best off the softmax by %.4f", worst);
        q.top_p = 0.5f;
        draw(&q, big, BV, DRAWS, bc);
        double cum = 0;
        int nucleus = 0;
        while (cum < 0.5) cum += exp(big[nucleus++]) / z;
        int outside = 0;
        for (int i = nucleus; i < BV; i++) outside += bc[i];
        CHECK(outside == 0 && bc[0] > 0 && bc[nucleus - 1] > 0, "top-p 0.5: %d draws outside the %d-token nucleus",
              outside, nucleus);
        for (int i = 0; i < BV; i++) big[i] = 0;
        q = plain(1.0f);
        draw(&q, big, BV, DRAWS, bc);
        int beyond = 0;
        for (int i = BV / 4; i < BV; i++) beyond += bc[i];
        CHECK(fabs(beyond / (double)DRAWS - 0.75) < 0.02, "flat: %.3f of draws past the first quarter of the tokens (0.75)",
              beyond / (double)DRAWS);
    }
    return test_done();
}
