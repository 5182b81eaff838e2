// train/data_impl.h — what the data pipeline's files share (not a public header).
//
// data_read.c turns each JSON object of a file into a sample (a conversation, or plain text pieces with a loss
// flag each); data_tok.c tokenizes a sample into an example and adds it to the dataset; data_batch.c splits and
// batches datasets.
#ifndef HN_DATA_IMPL_H
#define HN_DATA_IMPL_H

#include "train/data.h"

typedef struct {
    const char *s;
    size_t len;
    bool loss;
} hn_data_piece;

typedef struct {
    bool chat; // msgs through the chat template; otherwise pieces, plain
    hn_chat_msg *msgs;
    int n_msgs, cap_msgs;
    hn_data_piece *pieces;
    int n_pieces, cap_pieces;
    bool eos;    // plain: end with EOS (in the loss when the last piece is)
    char **owned; // strings built for this sample (freed with it)
    int n_owned, cap_owned;
} hn_data_sample;

void hn_data_sample_reset(hn_data_sample *s); // empties s, keeps its buffers
void hn_data_sample_deinit(hn_data_sample *s);

// Tokenizes s (see data.h for the masks and truncation) and appends the example to ds, or counts it in n_no_loss.
hn_status hn_data_add(hn_dataset *ds, const hn_data_sample *s, const hn_tokenizer *tk, const hn_data_params *p);

#endif
