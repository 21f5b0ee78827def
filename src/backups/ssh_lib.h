/* ssh_lib.h — libssh, loaded when an SFTP backup target is opened
 * (common/dlib.h).
 *
 * Only the off-box backup (sftp_target.c) speaks SSH; the daemon and
 * every other worker never need libssh and the Kerberos libraries it
 * brings. sftp_target_open() calls ssh_lib_load() first, and every other
 * call takes a session that exists only after that. */
#pragma once

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "common/dlib.h"

/* clang-format off */
#define SSH_SYMBOLS(X) \
	X(sftp_async_read) \
	X(sftp_async_read_begin) \
	X(sftp_attributes_free) \
	X(sftp_close) \
	X(sftp_closedir) \
	X(sftp_dir_eof) \
	X(sftp_extension_supported) \
	X(sftp_free) \
	X(sftp_fsync) \
	X(sftp_get_error) \
	X(sftp_init) \
	X(sftp_mkdir) \
	X(sftp_new) \
	X(sftp_open) \
	X(sftp_opendir) \
	X(sftp_readdir) \
	X(sftp_rename) \
	X(sftp_seek64) \
	X(sftp_stat) \
	X(sftp_statvfs) \
	X(sftp_statvfs_free) \
	X(sftp_unlink) \
	X(sftp_write) \
	X(ssh_clean_pubkey_hash) \
	X(ssh_connect) \
	X(ssh_disconnect) \
	X(ssh_free) \
	X(ssh_get_error) \
	X(ssh_get_fingerprint_hash) \
	X(ssh_get_publickey_hash) \
	X(ssh_get_server_publickey) \
	X(ssh_init) \
	X(ssh_is_connected) \
	X(ssh_key_free) \
	X(ssh_new) \
	X(ssh_options_set) \
	X(ssh_pki_import_privkey_file) \
	X(ssh_session_is_known_server) \
	X(ssh_string_free_char) \
	X(ssh_userauth_publickey)
/* clang-format on */
SSH_SYMBOLS(DLIB_DECLARE)

/* 0, or -ELIBACC (ssh_lib_error() says why). */
int ssh_lib_load(void);
const char *ssh_lib_error(void);
