/* Python's output, sent to the Elixir process that hands it to Logger. */
#ifndef MIRAGE_LOG_H
#define MIRAGE_LOG_H

#include <erl_nif.h>

/* Make the atoms the log messages use; called from load. */
void mirage_log_init(ErlNifEnv *env);

#endif
