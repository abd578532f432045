-- SPDX-License-Identifier: Apache-2.0
-- Source table of the customer_360 example in PostgreSQL.  REPLICA
-- IDENTITY FULL gives complete old rows (deletes carry every column).
CREATE TABLE IF NOT EXISTS public.loyalty_members (
  customer_id bigint PRIMARY KEY, tier int NOT NULL, points bigint NOT NULL,
  email text, email_confirmed boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE public.loyalty_members REPLICA IDENTITY FULL;
CREATE PUBLICATION autoglm_cdc_c360_loyalty FOR TABLE public.loyalty_members;
