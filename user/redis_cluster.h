/* redis_cluster.h - a small Redis Cluster client on hiredis: key slots
 * (CRC16 with hash tags), the slot map from CLUSTER SLOTS, pipelines sent
 * to the node that owns a slot, MOVED and ASK redirections, and a topology
 * refresh when a node fails or a slot moves. Each thread gets connections
 * of its own (no lock on the request path); the slot map is shared.
 *
 * Every call is bounded: connect and command timeouts, one redirection and
 * one refresh per pipeline, so a cluster that is down costs a caller the
 * timeouts and an error, never a hang.
 */
#ifndef ITR_REDIS_CLUSTER_H
#define ITR_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ITR_RC_SLOTS    16384
#define ITR_RC_MAX_ARGS 8

/* The slot of a key (Redis Cluster spec: CRC16/XMODEM of the key, or of
 * the part between the first '{' and the next '}' when it is not empty,
 * modulo 16384). */
uint16_t itr_rc_keyslot(const char *key, size_t len);
uint16_t itr_rc_crc16(const void *buf, size_t len);

struct itr_rc;

struct itr_rc_config {
	const char *seeds;        /* "host:port,host:port" */
	unsigned connect_ms;      /* 0: 300 */
	unsigned command_ms;      /* 0: 1000 */
	unsigned replica_wait_ms; /* itr_rc_write's WAIT timeout; 0: 50 */
};

/* Parse the seeds and read the slot map from the first that answers.
 * NULL with err on a bad seed list; a cluster that does not answer yet is
 * not an error (the map is read again at the first command). */
struct itr_rc *itr_rc_new(const struct itr_rc_config *cfg, char *err, size_t errlen);
void itr_rc_free(struct itr_rc *rc);

/* One command of a pipeline: argv/argvlen as hiredis takes them. */
struct itr_rc_cmd {
	int argc;
	const char *argv[ITR_RC_MAX_ARGS];
	size_t argvlen[ITR_RC_MAX_ARGS];
};

/* Send cmds to the owner of slot in one round trip and read every reply
 * into replies[i] (hiredis redisReply *, freed by itr_rc_replies_free).
 * A MOVED or ASK answer, or a broken connection, is followed once (after a
 * slot map refresh where needed). 0, or -1 with err (and no replies). */
int itr_rc_pipeline(struct itr_rc *rc, uint16_t slot, const struct itr_rc_cmd *cmds, size_t n,
                    void **replies, char *err, size_t errlen);
void itr_rc_replies_free(void **replies, size_t n);

/* Writes that must be on a replica before the caller answers anyone: like
 * itr_rc_pipeline, then a WAIT for one replica (at most replica_wait_ms;
 * no WAIT when the slot map lists no replica for the master).
 *
 * Group commit: callers that write to the same master at the same time
 * share one round trip. Each appends its commands to the master's queue;
 * the first finds the queue idle and becomes the leader, which sends
 * everything queued in one write on the master's shared connection, with
 * one WAIT at the end, and hands each caller its replies. Callers that came
 * while a leader was busy wait and the next of them leads the next batch.
 * WAIT covers every write sent before it on the connection, so each
 * caller's writes are acknowledged by a replica before it returns, as if
 * it had sent its own WAIT. A request that meets a redirection or a broken
 * connection is sent again alone through itr_rc_pipeline (with its own
 * WAIT). 0, or -1 with err. */
int itr_rc_write(struct itr_rc *rc, uint16_t slot, const struct itr_rc_cmd *cmds, size_t n,
                 void **replies, char *err, size_t errlen);

/* Several callers' writes in hand at once (a front end's batch): each
 * item's commands go to its slot's master on this thread's connections,
 * every master's share in one pipeline ending in one WAIT (as
 * itr_rc_write), all masters' pipelines sent before any is read. An item
 * that meets a redirection or a broken connection is sent again alone
 * through itr_rc_write. Each item gets result 0 with its replies, or -1
 * with err. */
struct itr_rc_item {
	uint16_t slot;
	const struct itr_rc_cmd *cmds;
	size_t n;
	void **replies;
	int result;
	char err[160];
};
void itr_rc_write_many(struct itr_rc *rc, struct itr_rc_item *items, size_t n);
/* The same for reads: no WAIT, and an item left over is sent alone
 * through itr_rc_pipeline. */
void itr_rc_read_many(struct itr_rc *rc, struct itr_rc_item *items, size_t n);

struct itr_rc_stats {
	uint64_t commands, redirects, refreshes, failures;
	uint64_t batches, batched;           /* itr_rc_write: round trips, requests in them */
	uint64_t read_batches, read_batched; /* itr_rc_read_many: the same */
	unsigned nodes;                      /* masters in the slot map */
};
void itr_rc_stats(struct itr_rc *rc, struct itr_rc_stats *out);

#endif
