/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The module's version (modinfo -F version): the package's version, kept equal to
 * package.json's "version" (test/package.test.ts checks it). The channel's ABI has its own
 * number (MXFS_GENL_VERSION); this one names the release the source came from.
 */
#ifndef MXFS_VERSION_H
#define MXFS_VERSION_H
#define MXFS_MODULE_VERSION "0.1.0"
#endif
