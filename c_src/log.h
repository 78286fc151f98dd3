/* Python's output, sent to the Elixir process that hands it to Logger. */
#ifndef MIRAGE_LOG_H
#define MIRAGE_LOG_H

#include <erl_nif.h>

/* Most lines sent to the forwarder and not yet logged by it. */
#define MIRAGE_LOG_IN_FLIGHT 1000
/* Most codec (C library) messages one NIF call sends; as mirage.output's cap.
 */
#define MIRAGE_LOG_CALL_LINES 20

/* Bracket a NIF call: codec messages beyond the cap are counted, and the count
 * is logged when the call ends. */
void mirage_codec_log_begin(void);
void mirage_codec_log_end(void);

/* Make the atoms the log messages use; called from load. */
void mirage_log_init(ErlNifEnv *env);

/* log_delivered/0: the forwarder has logged one line; answers how many lines
 * were dropped since the last report (usually 0). No Python: fine on a normal
 * scheduler. */
ERL_NIF_TERM nif_log_delivered(ErlNifEnv *env, int argc,
                               const ERL_NIF_TERM argv[]);

#endif
