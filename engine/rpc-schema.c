/* rpc-schema.c - the operation table (rpc-schema.h). */
#include "config.h"

#include <string.h>

#include "rpc-schema.h"
#include "store.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One field: name, type, required, max (bytes; elements for arrays), doc. */
#define F(n, t, req, max, doc)	{ n, TCA_ARG_##t, req, max, NULL, 0, doc }
#define F_MAP(n, req, sub, doc)	{ n, TCA_ARG_MAP, req, 0, sub, NELEM(sub), doc }
#define F_ARRAY(n, req, max, elem, doc) { n, TCA_ARG_ARRAY, req, max, elem, 1, doc }
#define SCHEMA(s) s, NELEM(s)
#define NONE NULL, 0

/* text limits shared by several ops */
#define TENANT_MAX	TCA_TENANT_MAX
#define DEVICE_ID_MAX	256	/* the engine's validation then refuses > 64 */

/* ------------------------------------------------------------ elements */

static const struct tca_arg_spec der_elem[] = {
	F("certificate", BYTES, 1, 0, "DER"),
};
static const struct tca_arg_spec text_elem[] = {
	F("item", TEXT, 1, 0, NULL),
};
static const struct tca_arg_spec text_elem_256[] = {
	F("item", TEXT, 1, 2048, NULL),
};

/* ------------------------------------------------------------ results */

static const struct tca_arg_spec issued_result[] = {
	F("certificate", BYTES, 1, 0, "the certificate, DER"),
	F("serial", TEXT, 1, 0, "serial number, hex"),
	F("not_before", INT, 1, 0, "Unix seconds"),
	F("not_after", INT, 1, 0, "Unix seconds"),
	F("fingerprint", TEXT, 1, 0, "SHA-256 of the DER certificate, hex"),
};

static const struct tca_arg_spec cacerts_result[] = {
	F_ARRAY("certificates", 1, 0, der_elem, "DER, current first, then the previous one"),
};

static const struct tca_arg_spec renewal_fields[] = {
	F("failed", BOOL, 1, 0, NULL),
	F("reason", TEXT, 1, 0, NULL),
	F("attempts", UINT, 1, 0, NULL),
	F("failed_since", INT, 1, 0, NULL),
	F("next_retry_at", INT, 1, 0, NULL),
};

/* ca.create, ca.show, and each element of ca.list (without certificate) */
#define CA_FIELDS(cert_required) \
	F("tenant", TEXT, 1, 0, NULL), \
	F("status", TEXT, 1, 0, "active, expiring, expired, deleted, key-missing, " \
	    "renewal-failed, previous"), \
	F("key_type", TEXT, 1, 0, NULL), \
	F("subject", TEXT, 1, 0, "RFC 2253"), \
	F("issuer", TEXT, 1, 0, "RFC 2253"), \
	F("serial", TEXT, 1, 0, "hex"), \
	F("not_before", INT, 1, 0, "Unix seconds"), \
	F("not_after", INT, 1, 0, "Unix seconds"), \
	F("fingerprint", TEXT, 1, 0, "SHA-256, hex"), \
	F("key_id", TEXT, 1, 0, "CKA_ID, hex"), \
	F("created_at", INT, 1, 0, "Unix seconds"), \
	F("has_previous", BOOL, 1, 0, "a pre-re-issuance certificate exists"), \
	F("deleted_at", INT, 0, 0, "deleted CAs only"), \
	F("certificate", BYTES, cert_required, 0, "DER"), \
	F_MAP("renewal", 0, renewal_fields, "while re-issuance is failing"), \
	F("crl_number", UINT, 0, 0, "the current CRL's"), \
	F("crl_next_update", INT, 0, 0, NULL), \
	F_MAP("crl_renewal", 0, renewal_fields, "while CRL re-signing is failing"), \
	F("suspended", BOOL, 0, 0, "present and true while the tenant is suspended")

static const struct tca_arg_spec ca_result[] = { CA_FIELDS(1) };
static const struct tca_arg_spec ca_list_elem_fields[] = { CA_FIELDS(0) };
static const struct tca_arg_spec ca_list_elem[] = {
	F_MAP("ca", 1, ca_list_elem_fields, NULL),
};
static const struct tca_arg_spec ca_list_result[] = {
	F_ARRAY("cas", 1, 0, ca_list_elem, "CA maps as ca.show, without certificate"),
	F("next", TEXT, 0, 0, "present when there are more: pass as after"),
};

static const struct tca_arg_spec ca_delete_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("status", TEXT, 1, 0, "\"deleted\""),
	F("token_objects_destroyed", UINT, 1, 0, NULL),
};

static const struct tca_arg_spec diff_fields[] = {
	F("field", TEXT, 1, 0, NULL),
	F("old", TEXT, 1, 0, NULL),
	F("new", TEXT, 1, 0, NULL),
};
static const struct tca_arg_spec diff_elem[] = {
	F_MAP("diff", 1, diff_fields, NULL),
};
static const struct tca_arg_spec reissue_one_fields[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("ok", BOOL, 1, 0, NULL),
	F("old_fingerprint", TEXT, 0, 0, NULL),
	F("new_fingerprint", TEXT, 0, 0, "\"\" on a dry run"),
	F("old_serial", TEXT, 0, 0, NULL),
	F("new_serial", TEXT, 0, 0, NULL),
	F("not_before", INT, 0, 0, NULL),
	F("not_after", INT, 0, 0, NULL),
	F_ARRAY("diff", 0, 0, diff_elem, "the TBS fields that differ"),
	F("code", TEXT, 0, 0, "when ok is false: the error code"),
	F("message", TEXT, 0, 0, "when ok is false"),
};
static const struct tca_arg_spec reissue_elem[] = {
	F_MAP("result", 1, reissue_one_fields, NULL),
};
static const struct tca_arg_spec ca_reissue_result[] = {
	F("dry_run", BOOL, 1, 0, NULL),
	F("failed", UINT, 1, 0, NULL),
	F_ARRAY("results", 1, 0, reissue_elem, "one per tenant"),
};

static const struct tca_arg_spec reload_result[] = {
	F_ARRAY("reloaded", 1, 0, text_elem, "what changed or was re-read"),
};

static const struct tca_arg_spec key_type_fields[] = {
	F("type", TEXT, 1, 0, NULL),
	F("mechanism", TEXT, 1, 0, NULL),
};
static const struct tca_arg_spec key_type_elem[] = {
	F_MAP("key_type", 1, key_type_fields, NULL),
};
static const struct tca_arg_spec token_status_fields[] = {
	F("label", TEXT, 1, 0, NULL),
	F("manufacturer", TEXT, 1, 0, NULL),
	F("model", TEXT, 1, 0, NULL),
	F("serial", TEXT, 1, 0, NULL),
	F("slot", UINT, 1, 0, NULL),
	F("pool_size", UINT, 1, 0, NULL),
	F("sessions_busy", UINT, 1, 0, NULL),
	F("keys", UINT, 1, 0, NULL),
	F("signatures", UINT, 1, 0, NULL),
	F("sign_errors", UINT, 1, 0, NULL),
	F("health", TEXT, 1, 0, "ok, recovering, pin-refused, ..."),
	F_ARRAY("key_types", 1, 0, key_type_elem, "what the token generates and signs"),
	F("recoveries", UINT, 1, 0, NULL),
	F("relogins", UINT, 1, 0, NULL),
	F("key_refreshes", UINT, 1, 0, NULL),
	F("sessions_replaced", UINT, 1, 0, NULL),
	F("problem", TEXT, 1, 0, NULL),
	F("problem_time", UINT, 1, 0, NULL),
	F("last_error", TEXT, 1, 0, NULL),
	F("last_error_time", UINT, 1, 0, NULL),
	F("isolation", TEXT, 0, 0, "none, or process: the module in the tca-tokend helper"),
	F("helper_restarts", UINT, 0, 0, "times the token helper was replaced"),
	F("helper_pid", UINT, 0, 0, "the token helper's process id; 0: none running"),
};
static const struct tca_arg_spec store_status_fields[] = {
	F("backend", TEXT, 1, 0, NULL),
	F("commits", UINT, 1, 0, NULL),
	F("changes", UINT, 1, 0, NULL),
	F("failures", UINT, 1, 0, NULL),
	F("health", TEXT, 0, 0, "\"ok\", or \"lost\": the store files were unlinked or replaced under the engine"),
	F("problem", TEXT, 0, 0, "what happened to the store, \"\" if nothing"),
	F("node", TEXT, 0, 0, "this engine among those sharing the store (host:pid:random)"),
	F("sync", TEXT, 0, 0, "following other engines' changes: \"off\" (a store of one "
	    "engine), \"following\", \"failing\" (the journal cannot be read: "
	    "commits still checked)"),
	F("synced_seq", UINT, 0, 0, "the journal record this engine's caches are read up to"),
};
static const struct tca_arg_spec tenants_status_fields[] = {
	F("active", UINT, 1, 0, NULL),
	F("missing_keys", UINT, 1, 0, NULL),
	F("orphan_keys", UINT, 1, 0, NULL),
	F("renewal_failed", UINT, 1, 0, NULL),
	F("crl_failed", UINT, 1, 0, NULL),
	F("expired", UINT, 1, 0, "CAs whose current certificate's notAfter has passed"),
	F("expiring", UINT, 1, 0, "CAs within alert.expiry_window_days of their notAfter"),
};
static const struct tca_arg_spec cert_counts_fields[] = {
	F("valid", UINT, 1, 0, NULL),
	F("revoked", UINT, 1, 0, NULL),
	F("expired", UINT, 1, 0, NULL),
};
static const struct tca_arg_spec crl_banner_fields[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("reason", TEXT, 1, 0, NULL),
	F("attempts", UINT, 1, 0, NULL),
	F("next_update", INT, 1, 0, "when the CRL still served expires"),
	F("next_retry_at", INT, 1, 0, NULL),
};
static const struct tca_arg_spec crl_banner_elem[] = {
	F_MAP("tenant", 1, crl_banner_fields, NULL),
};
static const struct tca_arg_spec banner_fields[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("reason", TEXT, 1, 0, NULL),
	F("attempts", UINT, 1, 0, NULL),
	F("not_after", INT, 1, 0, NULL),
	F("next_retry_at", INT, 1, 0, NULL),
};
static const struct tca_arg_spec banner_elem[] = {
	F_MAP("tenant", 1, banner_fields, NULL),
};
static const struct tca_arg_spec schedule_status_fields[] = {
	F("role", TEXT, 1, 0, "the yearly scheduler on this node: leader, standby or disabled"),
};
static const struct tca_arg_spec status_result[] = {
	F("version", TEXT, 1, 0, "engine version"),
	F("proto_min", UINT, 1, 0, NULL),
	F("proto_max", UINT, 1, 0, NULL),
	F("role", TEXT, 1, 0, "the caller's role"),
	F("uptime_s", UINT, 1, 0, NULL),
	F("issued", UINT, 1, 0, "device certificates since start"),
	F("refused", UINT, 1, 0, "requests refused since start"),
	F_MAP("token", 1, token_status_fields, NULL),
	F_MAP("store", 1, store_status_fields, NULL),
	F_MAP("tenants", 1, tenants_status_fields, NULL),
	F_ARRAY("renewal_failed", 1, 100, banner_elem, "first 100 CAs whose re-issuance fails"),
	F_MAP("certificates", 1, cert_counts_fields, "device certificates of active CAs"),
	F_ARRAY("crl_failed", 1, 100, crl_banner_elem, "first 100 CAs whose CRL re-signing fails"),
	F_MAP("schedule", 1, schedule_status_fields, "the yearly scheduler (issue 13)"),
};

static const struct tca_arg_spec crl_info_fields[] = {
	F("number", UINT, 1, 0, NULL),
	F("this_update", INT, 1, 0, NULL),
	F("next_update", INT, 1, 0, NULL),
	F("entries", UINT, 1, 0, NULL),
};
#define REVOKED_FIELDS \
	F("serial", TEXT, 1, 0, "hex"), \
	F("subject", TEXT, 1, 0, NULL), \
	F("revoked_at", INT, 1, 0, "Unix seconds"), \
	F("reason", TEXT, 1, 0, "RFC 5280 name"), \
	F("not_after", INT, 1, 0, NULL), \
	F("already", BOOL, 1, 0, "revoked before: nothing changed")
static const struct tca_arg_spec revoke_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	REVOKED_FIELDS,
	F_MAP("crl", 0, crl_info_fields, "the CRL signed after it"),
	F("crl_error", TEXT, 0, 0, "when re-signing the CRL failed (retried)"),
};
static const struct tca_arg_spec revoked_fields[] = { REVOKED_FIELDS };
static const struct tca_arg_spec revoked_elem[] = {
	F_MAP("revoked", 1, revoked_fields, NULL),
};
static const struct tca_arg_spec revoke_device_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("device_id", TEXT, 1, 0, NULL),
	F_ARRAY("revoked", 1, 0, revoked_elem, "every unexpired certificate"),
	F_MAP("crl", 0, crl_info_fields, NULL),
	F("crl_error", TEXT, 0, 0, NULL),
};
#define CERT_FIELDS \
	F("serial", TEXT, 1, 0, "hex"), \
	F("device_id", TEXT, 1, 0, NULL), \
	F("subject", TEXT, 1, 0, NULL), \
	F("status", TEXT, 1, 0, "valid, revoked, expired"), \
	F("not_before", INT, 1, 0, NULL), \
	F("not_after", INT, 1, 0, NULL), \
	F("issued_at", INT, 1, 0, NULL), \
	F("fingerprint", TEXT, 1, 0, NULL), \
	F("revoked_at", INT, 0, 0, "revoked ones"), \
	F("reason", TEXT, 0, 0, "revoked ones")
static const struct tca_arg_spec cert_fields[] = { CERT_FIELDS };
static const struct tca_arg_spec cert_elem[] = {
	F_MAP("certificate", 1, cert_fields, NULL),
};
static const struct tca_arg_spec cert_list_result[] = {
	F_ARRAY("certificates", 1, 0, cert_elem, "in issue order"),
	F("next", TEXT, 0, 0, "present when there are more: pass as after"),
};
static const struct tca_arg_spec cert_show_result[] = {
	CERT_FIELDS,
	F("certificate", BYTES, 1, 0, "DER"),
};
static const struct tca_arg_spec crl_result[] = {
	F("crl", BYTES, 1, 0, "DER CertificateList"),
	F("number", UINT, 1, 0, NULL),
	F("this_update", INT, 1, 0, NULL),
	F("next_update", INT, 1, 0, NULL),
	F("entries", UINT, 1, 0, NULL),
};
static const struct tca_arg_spec crl_sign_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("number", UINT, 1, 0, NULL),
	F("this_update", INT, 1, 0, NULL),
	F("next_update", INT, 1, 0, NULL),
	F("entries", UINT, 1, 0, NULL),
};
static const struct tca_arg_spec policy_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("policy", TEXT, 1, 0, "canonical key=value lines; \"\" = the global defaults"),
};
static const struct tca_arg_spec csrattrs_result[] = {
	F("csrattrs", BYTES, 1, 0, "DER CsrAttrs (RFC 7030 4.5.2)"),
};
#define DEVICE_FIELDS \
	F("device_id", TEXT, 1, 0, NULL), \
	F("state", TEXT, 1, 0, "pending, used, locked, expired"), \
	F("registered_at", INT, 1, 0, NULL), \
	F("expires_at", INT, 1, 0, "0: never"), \
	F("failures", UINT, 1, 0, "wrong passwords"), \
	F("used_at", INT, 0, 0, "when the password yielded its certificate"), \
	F("certificate_serial", TEXT, 0, 0, "that certificate")
static const struct tca_arg_spec device_fields[] = { DEVICE_FIELDS };
static const struct tca_arg_spec device_elem[] = {
	F_MAP("device", 1, device_fields, NULL),
};
static const struct tca_arg_spec device_list_result[] = {
	F_ARRAY("devices", 1, 0, device_elem, "by device id"),
	F("next", TEXT, 0, 0, "present when there are more: pass as after"),
};
static const struct tca_arg_spec registered_fields[] = {
	F("device_id", TEXT, 1, 0, NULL),
	F("otp", TEXT, 0, 0, "the generated password: shown once, stored nowhere"),
};
static const struct tca_arg_spec registered_elem[] = {
	F_MAP("registered", 1, registered_fields, NULL),
};
static const struct tca_arg_spec device_register_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("expires_at", INT, 1, 0, "0: never"),
	F_ARRAY("registered", 1, 0, registered_elem, NULL),
};
static const struct tca_arg_spec device_unregister_result[] = {
	F("tenant", TEXT, 1, 0, NULL),
	F("device_id", TEXT, 1, 0, NULL),
};
static const struct tca_arg_spec ocsp_result[] = {
	F("response", BYTES, 1, 0, "DER OCSPResponse"),
	F("status", TEXT, 1, 0, "good, revoked, unknown or malformed (first certificate)"),
};

/* ------------------------------------------------------------ arguments */

static const struct tca_arg_spec issue_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("device_id", TEXT, 1, DEVICE_ID_MAX, "must equal the CSR subject's CN"),
	F("csr", BYTES, 1, 0, "PKCS#10, DER or PEM"),
	F("days", UINT, 0, 0, "validity; absent or 0: the configured one"),
	F("otp", TEXT, 0, 128, "the device's registered one-time password"),
};
static const struct tca_arg_spec reenroll_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("device_id", TEXT, 1, DEVICE_ID_MAX, NULL),
	F("csr", BYTES, 1, 0, "PKCS#10, DER or PEM"),
	F("current", BYTES, 1, 0, "the device's certificate, DER or PEM"),
	F("days", UINT, 0, 0, NULL),
};
static const struct tca_arg_spec tenant_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
};
static const struct tca_arg_spec show_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("previous", BOOL, 0, 0, "the pre-re-issuance certificate"),
};
static const struct tca_arg_spec reissue_args[] = {
	F("tenant", TEXT, 0, TENANT_MAX, "this tenant, or"),
	F("all", BOOL, 0, 0, "every active CA"),
	F("dry_run", BOOL, 0, 0, "show what would change, sign nothing"),
};
static const struct tca_arg_spec create_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("key_type", TEXT, 0, 16, "ec-p256 (default), ec-p384, rsa-3072, ed25519"),
};
static const struct tca_arg_spec list_args[] = {
	F("all", BOOL, 0, 0, "include deleted CAs"),
	F("after", TEXT, 0, TENANT_MAX, "resume after this tenant"),
	F("limit", UINT, 0, 0, "page size, 1..1000 (500)"),
};
static const struct tca_arg_spec delete_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("confirm", BOOL, 1, 0, "must be true"),
};

static const struct tca_arg_spec revoke_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("serial", TEXT, 1, 64, "hex, colons allowed"),
	F("reason", TEXT, 0, 32, "RFC 5280 reason name (unspecified); not certificateHold"),
};
static const struct tca_arg_spec revoke_device_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("device_id", TEXT, 1, DEVICE_ID_MAX, NULL),
	F("reason", TEXT, 0, 32, NULL),
};
static const struct tca_arg_spec cert_list_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("device_id", TEXT, 0, DEVICE_ID_MAX, "this device only"),
	F("status", TEXT, 0, 16, "valid, revoked or expired"),
	F("after", TEXT, 0, 20, "resume after this cursor"),
	F("limit", UINT, 0, 0, "page size, 1..1000 (500)"),
};
static const struct tca_arg_spec cert_show_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("serial", TEXT, 1, 64, "hex"),
};
static const struct tca_arg_spec policy_set_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F_ARRAY("set", 1, 32, text_elem_256, "key=value assignments, all or none; key= resets"),
};
static const struct tca_arg_spec device_new_fields[] = {
	F("device_id", TEXT, 1, DEVICE_ID_MAX, NULL),
	F("otp", TEXT, 0, 128, "absent: the engine generates one"),
};
static const struct tca_arg_spec device_new_elem[] = {
	F_MAP("device", 1, device_new_fields, NULL),
};
static const struct tca_arg_spec device_register_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F_ARRAY("devices", 1, 200, device_new_elem, "all validated before any is stored"),
	F("expires_in_s", UINT, 0, 0, "0: never; absent: device.otp_expiry_days"),
};
static const struct tca_arg_spec device_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("device_id", TEXT, 1, DEVICE_ID_MAX, NULL),
};
static const struct tca_arg_spec device_list_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("after", TEXT, 0, DEVICE_ID_MAX, "resume after this device id"),
	F("limit", UINT, 0, 0, "page size, 1..1000 (500)"),
};
static const struct tca_arg_spec ocsp_args[] = {
	F("tenant", TEXT, 1, TENANT_MAX, NULL),
	F("request", BYTES, 1, 16384, "DER OCSPRequest"),
};

/* ------------------------------------------------------------ the table */

static const struct tca_op_desc ops[] = {
	{ TCA_OP_ISSUE, TCA_ROLE_FRONTEND, SCHEMA(issue_args), SCHEMA(issued_result),
	  "issue a device certificate from a CSR" },
	{ TCA_OP_REENROLL, TCA_ROLE_FRONTEND, SCHEMA(reenroll_args), SCHEMA(issued_result),
	  "renew a device certificate, presenting the current one" },
	{ TCA_OP_CACERTS, TCA_ROLE_FRONTEND, SCHEMA(tenant_args), SCHEMA(cacerts_result),
	  "the tenant's CA certificates" },
	{ TCA_OP_STATUS, TCA_ROLE_FRONTEND, NONE, SCHEMA(status_result),
	  "engine, token and store status" },
	{ TCA_OP_CA_CREATE, TCA_ROLE_ADMIN, SCHEMA(create_args), SCHEMA(ca_result),
	  "create the tenant's CA: key in the token, self-signed certificate" },
	{ TCA_OP_CA_SHOW, TCA_ROLE_ADMIN, SCHEMA(show_args), SCHEMA(ca_result),
	  "describe the tenant's CA" },
	{ TCA_OP_CA_LIST, TCA_ROLE_ADMIN, SCHEMA(list_args), SCHEMA(ca_list_result),
	  "list CAs, paged by tenant" },
	{ TCA_OP_CA_DELETE, TCA_ROLE_ADMIN, SCHEMA(delete_args), SCHEMA(ca_delete_result),
	  "delete the tenant's CA and destroy its key" },
	{ TCA_OP_CA_REISSUE, TCA_ROLE_ADMIN, SCHEMA(reissue_args), SCHEMA(ca_reissue_result),
	  "re-issue CA certificates with the same key now" },
	{ TCA_OP_RELOAD, TCA_ROLE_ADMIN, NONE, SCHEMA(reload_result),
	  "re-read the engine configuration" },
	{ TCA_OP_CERT_REVOKE, TCA_ROLE_ADMIN, SCHEMA(revoke_args), SCHEMA(revoke_result),
	  "revoke a device certificate (irreversible), then re-sign the CRL" },
	{ TCA_OP_CERT_REVOKE_DEVICE, TCA_ROLE_ADMIN, SCHEMA(revoke_device_args),
	  SCHEMA(revoke_device_result),
	  "revoke every unexpired certificate of a device" },
	{ TCA_OP_CERT_LIST, TCA_ROLE_ADMIN, SCHEMA(cert_list_args), SCHEMA(cert_list_result),
	  "the tenant's device certificates, paged" },
	{ TCA_OP_CERT_SHOW, TCA_ROLE_ADMIN, SCHEMA(cert_show_args), SCHEMA(cert_show_result),
	  "one device certificate by serial" },
	{ TCA_OP_CRL, TCA_ROLE_FRONTEND, SCHEMA(tenant_args), SCHEMA(crl_result),
	  "the tenant's current CRL, from the store (never signs)" },
	{ TCA_OP_CRL_SIGN, TCA_ROLE_ADMIN, SCHEMA(tenant_args), SCHEMA(crl_sign_result),
	  "sign and publish a fresh CRL now" },
	{ TCA_OP_OCSP, TCA_ROLE_FRONTEND, SCHEMA(ocsp_args), SCHEMA(ocsp_result),
	  "answer an OCSP request, signed by the tenant CA key" },
	{ TCA_OP_POLICY_SET, TCA_ROLE_ADMIN, SCHEMA(policy_set_args), SCHEMA(policy_result),
	  "change the tenant's own issuance policy (journaled, effective at once)" },
	{ TCA_OP_POLICY_SHOW, TCA_ROLE_ADMIN, SCHEMA(tenant_args), SCHEMA(policy_result),
	  "the tenant's own issuance policy" },
	{ TCA_OP_CA_SUSPEND, TCA_ROLE_ADMIN, SCHEMA(tenant_args), SCHEMA(policy_result),
	  "suspend the tenant: it issues nothing (TENANT_SUSPENDED)" },
	{ TCA_OP_CA_RESUME, TCA_ROLE_ADMIN, SCHEMA(tenant_args), SCHEMA(policy_result),
	  "resume a suspended tenant" },
	{ TCA_OP_CSRATTRS, TCA_ROLE_FRONTEND, SCHEMA(tenant_args), SCHEMA(csrattrs_result),
	  "RFC 7030 CSR attributes from the tenant's policy" },
	{ TCA_OP_DEVICE_REGISTER, TCA_ROLE_ADMIN, SCHEMA(device_register_args),
	  SCHEMA(device_register_result),
	  "register devices and their one-time passwords (journaled)" },
	{ TCA_OP_DEVICE_UNREGISTER, TCA_ROLE_ADMIN, SCHEMA(device_args),
	  SCHEMA(device_unregister_result), "remove a device's registration (journaled)" },
	{ TCA_OP_DEVICE_SHOW, TCA_ROLE_ADMIN, SCHEMA(device_args), SCHEMA(device_fields),
	  "a device's registration (never its password)" },
	{ TCA_OP_DEVICE_LIST, TCA_ROLE_ADMIN, SCHEMA(device_list_args),
	  SCHEMA(device_list_result), "the tenant's registered devices, paged" },
};

const struct tca_op_desc *
tca_op_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < NELEM(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

const struct tca_op_desc *
tca_op_at(size_t i)
{
	return i < NELEM(ops) ? &ops[i] : NULL;
}

const char *
tca_role_name(enum tca_role role)
{
	switch (role) {
	case TCA_ROLE_FRONTEND:
		return "frontend";
	case TCA_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

const char *
tca_arg_type_name(enum tca_arg_type t)
{
	switch (t) {
	case TCA_ARG_TEXT:
		return "text";
	case TCA_ARG_BYTES:
		return "bytes";
	case TCA_ARG_UINT:
		return "uint";
	case TCA_ARG_BOOL:
		return "bool";
	case TCA_ARG_INT:
		return "int";
	case TCA_ARG_MAP:
		return "map";
	case TCA_ARG_ARRAY:
		return "array";
	}
	return "?";
}
