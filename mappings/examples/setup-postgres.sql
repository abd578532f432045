-- SPDX-License-Identifier: Apache-2.0
-- Source table of the customer_wide example in PostgreSQL.  REPLICA
-- IDENTITY FULL gives complete old rows, so the mapping can tell which
-- fields an update changed and notice a moved business key.
CREATE TABLE IF NOT EXISTS public.accounts (
  id int PRIMARY KEY, customer_ref bigint NOT NULL, account_name text,
  balance numeric(12,3), credit_limit numeric(12,2), updated_at timestamptz);
ALTER TABLE public.accounts REPLICA IDENTITY FULL;
