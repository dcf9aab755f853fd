/*
 * p11-faulty.h - names shared by the fault-injecting PKCS#11 module
 * (tests/p11-faulty.c) and the tests that drive it.  Test code only.
 *
 * The module wraps a real PKCS#11 module and misbehaves on request.  A test
 * drives it with three environment variables, read at C_GetFunctionList and
 * again at every C_Initialize:
 *
 *   TCA_FAULTY_MODULE  the real module (default: the SoftHSMv2 module)
 *   TCA_FAULTY_CTL     the control file; missing file or unset = no faults
 *   TCA_FAULTY_LOG     file the module appends one line per event to
 *
 * Control file: one directive per line, '#' starts a comment, blank lines
 * are ignored, words are separated by blanks.  The file is stat()ed on every
 * PKCS#11 call and re-read when it changed; replace it atomically (write a
 * temporary file, rename it over the old one).  FUNC is a PKCS#11 function
 * name (C_Sign) or '*' for every function but C_GetFunctionList, C_Initialize
 * and C_Finalize.  RV is a CKR_ name or a number (0x30).
 *
 *   fail FUNC RV [count N|inf]   the next N (default 1) calls of FUNC return
 *                                RV without doing their work
 *   hang FUNC MS [count N|inf]   the next N (default 1) calls of FUNC sleep
 *                                MS ms first; ends early when the line is
 *                                removed from the file
 *   latency FUNC MS              every call of FUNC sleeps MS ms first
 *   crash FUNC [count N|inf]     the next N (default 1) calls of FUNC log
 *                                "crash FUNC" and abort() the process: a
 *                                module that crashes (token.isolation =
 *                                process: the helper dies, not the engine)
 *   remove                       the token is out of its slot for as long as
 *                                the line is there; when it goes, the token
 *                                is back as after a re-insertion (all
 *                                session and object handles dead, logged out)
 *   invalidate-handles [N]       when the line differs from the last one
 *                                acted on (write N+1 to repeat): every object
 *                                handle handed out so far is invalid
 *   logout [N]                   when the line differs from the last one
 *                                acted on: the real module is logged out
 *                                (as by an HSM restart or login timeout)
 *   idle-timeout MS              a session unused for MS ms is dead
 *   require-reinit [N]           once per distinct line: everything fails
 *                                with CKR_DEVICE_ERROR until the application
 *                                does C_Finalize + C_Initialize
 *   generation N                 a new N re-arms the counts of all fail and
 *                                hang lines
 *
 * A fail or hang line's count is remembered by its text (words joined by one
 * blank, comments dropped) until the generation changes, even while the
 * line is absent: rewriting the file, or removing a line and adding it back,
 * never re-arms it.  Only a line with a new text, or a new generation, does.
 *
 * Edge-triggered directives (invalidate-handles, logout, require-reinit)
 * already in the file when it is first read count as seen and do nothing.
 * The module stays mapped until the process exits, so all of this survives
 * p11_kit_module_release + p11_kit_module_load; a different TCA_FAULTY_CTL
 * path at C_Initialize starts afresh.
 *
 * What the application sees:
 *
 *   fail      on a call that ends an operation (C_Sign, C_SignFinal,
 *             C_Digest...) the real operation is ended too, so the next
 *             C_SignInit on the session works, as on a real HSM
 *   remove    calls on existing sessions: CKR_DEVICE_REMOVED;
 *             C_GetSlotList(CK_TRUE): no slots (all of the real module's);
 *             C_GetSlotInfo: no CKF_TOKEN_PRESENT; C_GetTokenInfo,
 *             C_OpenSession, C_InitToken, C_GetMechanism*,
 *             C_CloseAllSessions: CKR_TOKEN_NOT_PRESENT.  The real sessions
 *             are logged out and closed at once.  After the line goes: old
 *             sessions CKR_SESSION_HANDLE_INVALID, old objects
 *             CKR_OBJECT_HANDLE_INVALID (CKR_KEY_HANDLE_INVALID as a key
 *             argument), new sessions are public until C_Login
 *   invalidate-handles  like that for object handles only; C_FindObjects
 *             hands out new valid ones
 *   logout    state public; handles of private objects handed out before:
 *             CKR_USER_NOT_LOGGED_IN as a key argument (C_SignInit),
 *             CKR_OBJECT_HANDLE_INVALID elsewhere; after a new C_Login they
 *             work again (SoftHSMv2 itself would have forgotten them); a
 *             C_Sign whose C_SignInit came before the logout still works
 *   idle-timeout  every call on the dead session, C_CloseSession included:
 *             CKR_SESSION_HANDLE_INVALID
 *   require-reinit  every call but C_Initialize, C_Finalize, C_GetInfo:
 *             CKR_DEVICE_ERROR; after C_Finalize + C_Initialize all old
 *             handles are dead and the token is logged out
 *   hang, latency   the call sleeps, then runs normally (the module's lock
 *             is not held: other calls go on)
 *
 * Object and session handles given to the application are
 * (epoch << 32) | real handle; TCA_FAULTY_HANDLE_EPOCH() extracts the epoch.
 */
#ifndef TCA_P11_FAULTY_H
#define TCA_P11_FAULTY_H

#define TCA_FAULTY_ENV_MODULE	"TCA_FAULTY_MODULE"
#define TCA_FAULTY_ENV_CTL	"TCA_FAULTY_CTL"
#define TCA_FAULTY_ENV_LOG	"TCA_FAULTY_LOG"

#ifdef TCA_SOFTHSM_MODULE
#define TCA_FAULTY_DEFAULT_MODULE TCA_SOFTHSM_MODULE
#else
#define TCA_FAULTY_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

/* The longest control line the module accepts (longer lines are errors). */
#define TCA_FAULTY_MAX_LINE	256

/* A hang or latency sleep re-checks the control file this often (ms). */
#define TCA_FAULTY_SLICE_MS	20

#define TCA_FAULTY_HANDLE_EPOCH(h)	((unsigned long)(h) >> 32)

/*
 * Log lines (each ends in '\n'; count them by prefix).  "%s" is a function
 * name (C_Sign) or a CKR_ name (CKR_DEVICE_ERROR, or 0x... if unknown).
 *
 *   fail %s %s                   an injected error: function, rv
 *   hang %s %lu begin            a hang started: function, ms
 *   hang %s end                  it ended after the full time
 *   hang %s end interrupted      it ended early: its line was removed
 *   remove / return              the token left / came back
 *   invalidate-handles           object handle epoch bumped
 *   logout                       the real module was logged out
 *   logout rv=%s                 ... but the real C_Logout said %s
 *   logout-skipped no-session    ... nothing to log out: no session open
 *   idle-expired session         a session died of idleness
 *   reinit-required / reinit-done
 *   call C_Login rv=%s           every C_Login (the PIN is never logged)
 *   call C_Initialize rv=%s      every C_Initialize
 *   call C_Finalize rv=%s        every C_Finalize
 *   ctl-error line %u: %s        a control line was ignored
 */
#define TCA_FAULTY_LOG_CRASH		"crash"
#define TCA_FAULTY_LOG_REMOVE		"remove"
#define TCA_FAULTY_LOG_RETURN		"return"
#define TCA_FAULTY_LOG_INVALIDATE	"invalidate-handles"
#define TCA_FAULTY_LOG_LOGOUT		"logout"
#define TCA_FAULTY_LOG_IDLE		"idle-expired session"
#define TCA_FAULTY_LOG_REINIT_REQUIRED	"reinit-required"
#define TCA_FAULTY_LOG_REINIT_DONE	"reinit-done"
#define TCA_FAULTY_LOG_CTL_ERROR	"ctl-error"

#endif
