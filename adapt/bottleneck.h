// adapt/bottleneck.h — bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020) as adapt/method.h methods:
// "adapter-houlsby" (AdapterHub's DoubleSeqBnConfig placement: after the attention and after the feed-forward of
// every block) and "adapter-pfeiffer" (after the feed-forward only). PEFT has neither; they save in hone's own
// format. adapt/bottleneck.c's header says where they sit relative to AdapterHub's, how they start and what the
// saved directory holds.
//
//   hn_method_config cfg = hn_method_default_config();   // relu, width / 16, up-projection zero: identity at start
//   hn_method *me;
//   if (hn_method_adapter_houlsby.attach_new(&me, m, &cfg)) ...;
//   ... train hn_method_params(me) ...
//   hn_method_save(me, "run/adapter");                     // hone_adapter.json + adapter_model.safetensors
//   hn_method_destroy(me);
//   hn_method_load(&me, m, "run/adapter");                 // finds "adapter-houlsby" in hone_adapter.json
#ifndef HN_BOTTLENECK_H
#define HN_BOTTLENECK_H

#include "adapt/method.h"

extern const hn_method_ops hn_method_adapter_houlsby, hn_method_adapter_pfeiffer;

// The format version this hone writes and the newest it reads (hone_adapter.json's "version").
#define HN_BOTTLENECK_VERSION 1

#endif
