-- SPDX-License-Identifier: Apache-2.0
-- Source tables of the customer_360 example in MariaDB (run as root).
-- Field groups need a primary key on the source table and full row
-- images (binlog_row_image=FULL, MariaDB's default).
CREATE DATABASE IF NOT EXISTS crm360;
CREATE DATABASE IF NOT EXISTS shop360;
CREATE TABLE IF NOT EXISTS crm360.customers (
  id INT PRIMARY KEY, first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100),
  email VARCHAR(100), email_verified TINYINT NOT NULL DEFAULT 0,
  is_active TINYINT NOT NULL) CHARSET utf8mb4;
CREATE TABLE IF NOT EXISTS shop360.orders (
  id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
  created_at DATETIME(6) NOT NULL,       -- UTC
  KEY (customer_id)) CHARSET utf8mb4;
