-- SPDX-License-Identifier: Apache-2.0
-- Source tables of the customer_wide example in MariaDB (run as root).
CREATE DATABASE IF NOT EXISTS crm;
CREATE DATABASE IF NOT EXISTS support;
CREATE TABLE IF NOT EXISTS crm.tiers (id INT PRIMARY KEY, name VARCHAR(50));
CREATE TABLE IF NOT EXISTS crm.customers (
  id INT PRIMARY KEY, first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100),
  email VARCHAR(100), is_active TINYINT NOT NULL,
  created_at DATETIME NOT NULL,          -- local time, Europe/Berlin
  tier_id INT, credit_limit DECIMAL(12,2)) CHARSET utf8mb4;
CREATE TABLE IF NOT EXISTS support.tickets (
  id INT PRIMARY KEY, customer_id INT NOT NULL, subject VARCHAR(200),
  created_at DATETIME NOT NULL) CHARSET utf8mb4;
