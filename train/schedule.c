// train/schedule.c — learning-rate schedules with warmup, as transformers' optimization.py defines them
// (train/optim.h).
#include "train/optim.h"

#include <math.h>

double hn_lr_at(const hn_lr_schedule *s, int64_t step) {
    double f;
    if (step < s->warmup) {
        f = (double)step / (double)(s->warmup > 1 ? s->warmup : 1);
    } else {
        double span = (double)(s->total - s->warmup > 1 ? s->total - s->warmup : 1);
        switch (s->kind) {
        case HN_SCHED_COSINE: {
            double q = (double)(step - s->warmup) / span;
            // num_cycles = 0.5: cos(pi * 2 * 0.5 * q)
            f = fmax(0.0, 0.5 * (1.0 + cos(M_PI * 2.0 * 0.5 * q)));
            break;
        }
        case HN_SCHED_LINEAR: f = fmax(0.0, (double)(s->total - step) / span); break;
        default: f = 1.0; break;
        }
    }
    return s->peak * f;
}

int64_t hn_warmup_steps(int warmup_steps, double warmup_ratio, int64_t total) {
    if (warmup_steps > 0) return warmup_steps;
    return (int64_t)ceil(warmup_ratio * (double)total);
}
