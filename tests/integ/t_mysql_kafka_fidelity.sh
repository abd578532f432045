#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The live twin of the decode fidelity test: a random workload over every
# column type on the real MariaDB, streamed by `autoglm-cdc --source mysql
# --sink kafka` into the real broker, consumed back and replayed: the
# replayed tables must equal the source tables (compared with SELECT).
export CDC_FID_VIA=kafka
exec python3 "$(dirname "$0")/t_decode_fidelity.py" "$@"
