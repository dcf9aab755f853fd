/*
 * rpc-ops.h - the RPC operation handlers.  Names, roles and schemas come from
 * the one operation table (rpc-schema.h); every request is decoded,
 * version-checked, role-checked and schema-checked before its handler runs
 * (docs/rpc.md).
 */
#ifndef TCA_RPC_OPS_H
#define TCA_RPC_OPS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "committer.h"
#include "conf.h"
#include "renewal.h"
#include "rpc-schema.h"
#include "engine.h"
#include "schedule.h"
#include "store.h"
#include "token.h"

struct tca_roles {
	struct tca_id_list frontend_uids, frontend_gids, admin_uids, admin_gids;
};

/* admin if uid or (primary) gid is in an admin list, else frontend if in a
 * frontend list, else none. */
enum tca_role tca_role_of(const struct tca_roles *roles, uid_t uid, gid_t gid);

/* What a handler may use; one per connection. */
struct tca_rpc_ctx {
	tca_engine *engine;
	tca_token *tok;
	tca_committer *cm;
	tca_store *st;
	const char *store_name;	/* the store's redacted URI (status); NULL = "" */
	struct tca_requester who;
	enum tca_role role;
	time_t started;
	/* re-reads the configuration; fills *what with a comma-separated list of
	 * what changed or was re-read; TCA_OK or TCA_ERR_CONFIG with why */
	int (*reload)(void *ctx, char *what, size_t whatlen, char *why, size_t whylen);
	void *reload_ctx;
	/* ca.reissue: the configured serial mode and schedule (a CA that is due
	 * gets the scheduled instant as notBefore, otherwise now) */
	enum tca_serial_mode serial_mode;
	struct tca_schedule schedule;
	/* the scheduler (status: schedule.role); NULL: schedule.enabled = false */
	tca_renewal *renewal;
};

/*
 * Handles one request frame and produces the response frame (*resp_ptr,
 * caller free()s).  Errors in the request become error responses; the only
 * failure return is TCA_ERR_NOMEM (no response could be built).
 */
int tca_rpc_handle(struct tca_rpc_ctx *ctx, const unsigned char *frame, size_t len,
    unsigned char **resp_ptr, size_t *resp_len_ptr);

/* TCA_OK when every op in the table has a handler and every handler is in
 * the table; else TCA_ERR_INTERNAL naming the first mismatch.  The engine
 * refuses to start on a mismatch. */
int tca_rpc_ops_selfcheck(char *why, size_t whylen);

#endif
