/*
 * tp_order.c - a pass-through transform that records the order in which a
 * duet calls its two instances, for the experiment tests.
 *
 * In an A/A duet both instances belong to this one module, so they share
 * its globals. The first call on a batch (told by the batch's first
 * sequence number) notes which instance made it; the second call on the
 * same batch completes a pair and counts, on the counters of A (the
 * instance created while no other existed: the stage's own), the pair,
 * whether A ran first, and whether the order is the same as in the
 * previous pair. Strict
 * alternation shows as no repeats at all, a fixed order as A always (or
 * never) first; an order drawn per batch shows as about half of each.
 */
#include <observatory/stage.h>

typedef struct order {
    const obs_host *host;
    int c_pairs, c_a_first, c_repeats;
} order;

static order *inst_a;
static const order *last_first; /* the instance that ran first on last_seq */
static uint64_t last_seq = UINT64_MAX;
static int prev_a_first = -1;

static int o_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    order *o = host->alloc(host, sizeof *o);
    if (!o)
        return OBS_ENOMEM;
    o->host = host;
    o->c_pairs = host->counter_register(host, "duet_pairs", OBS_COUNTER_PLAIN,
                                        "batches both instances processed");
    o->c_a_first = host->counter_register(host, "duet_a_first", OBS_COUNTER_PLAIN,
                                          "pairs in which the first instance ran first");
    o->c_repeats = host->counter_register(host, "duet_order_repeats", OBS_COUNTER_PLAIN,
                                          "pairs in the same order as the pair before");
    if (o->c_pairs < 0 || o->c_a_first < 0 || o->c_repeats < 0) {
        host->free(host, o);
        return OBS_EINVAL;
    }
    if (!inst_a) /* init runs off the data path, one at a time */
        inst_a = o;
    *instance = o;
    return OBS_OK;
}

static int o_process(void *instance, const obs_batch *in, obs_out *out)
{
    const order *o = instance;
    if (in->n_records) {
        uint64_t seq = in->records[0].seq;
        if (seq != last_seq) {
            last_seq = seq;
            last_first = o;
        } else if (inst_a) {
            /* Both instances run on the stage thread: A's counters are
             * safe to add to from B's call. */
            const obs_host *h = inst_a->host;
            int a_first = last_first == inst_a;
            h->counter_add(h, inst_a->c_pairs, 1);
            h->counter_add(h, inst_a->c_a_first, (uint64_t)a_first);
            h->counter_add(h, inst_a->c_repeats, prev_a_first == a_first);
            prev_a_first = a_first;
        }
    }
    for (uint32_t i = 0; i < in->n_records; i++)
        if (obs_out_pass(out, &in->records[i]) != OBS_OK)
            return OBS_ENOMEM;
    return OBS_OK;
}

static void o_fini(void *instance)
{
    order *o = instance;
    if (o == inst_a)
        inst_a = NULL;
    o->host->free(o->host, o);
}

static const obs_stage_desc order_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "tp_order",
    .version = "1.0.0",
    .description = "pass-through that records the order of a duet's calls",
    .init = o_init,
    .process = o_process,
    .fini = o_fini,
};

OBS_DECLARE_STAGE(order_desc)
