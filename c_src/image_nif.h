/* The NIF functions over images, and the resource type that holds them. */
#ifndef MIRAGE_IMAGE_NIF_H
#define MIRAGE_IMAGE_NIF_H

#include "mirage_nif.h"

/* Open (or take over, on upgrade) the image resource type. */
ErlNifResourceType *mirage_open_image_type(ErlNifEnv *env);

/* call_io/3 and call_cpu/3: one operation of mirage/ops.py. */
ERL_NIF_TERM nif_call(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* release/1: hand the image's Python object to the reaper now (idempotent). */
ERL_NIF_TERM nif_release(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_live_handles(ErlNifEnv *env, int argc,
                              const ERL_NIF_TERM argv[]);
/* abandoned_calls/0: calls stopped because their caller died (pure C). */
ERL_NIF_TERM nif_abandoned_calls(ErlNifEnv *env, int argc,
                                 const ERL_NIF_TERM argv[]);
/* atom_tables/0: the reason and format atoms made at load, by index. */
ERL_NIF_TERM nif_atom_tables(ErlNifEnv *env, int argc,
                             const ERL_NIF_TERM argv[]);
/* loaded?/0: true, replacing the Elixir stub's false once the library loads. */
ERL_NIF_TERM nif_loaded(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
