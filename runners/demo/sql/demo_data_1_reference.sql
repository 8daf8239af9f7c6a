-- Demo data, part 1: fixed reference data and the catalog.
-- Every random value is pg_temp.r(i, stream): a hash of (row, stream, seed), so the same seed
-- gives the same data whatever the plan. Counts and time ranges come from the temp table cfg.

-- step: ref.currencies
insert into ref.currencies (code, name, minor_units) values
  ('EUR', 'Euro', 2), ('USD', 'US dollar', 2), ('GBP', 'Pound sterling', 2),
  ('PLN', 'Polish zloty', 2), ('SEK', 'Swedish krona', 2);

-- step: ref.countries
insert into ref.countries (code, name, currency_code) values
  ('DE', 'Germany', 'EUR'), ('FR', 'France', 'EUR'), ('NL', 'Netherlands', 'EUR'),
  ('PL', 'Poland', 'PLN'), ('SE', 'Sweden', 'SEK'), ('GB', 'United Kingdom', 'GBP'),
  ('CN', 'China', 'USD'), ('US', 'United States', 'USD');

-- step: ref.regions
insert into ref.regions (id, country_code, name, timezone) values
  (1, 'DE', 'Berlin-Brandenburg', 'Europe/Berlin'), (2, 'DE', 'Bavaria', 'Europe/Berlin'),
  (3, 'DE', 'North Rhine-Westphalia', 'Europe/Berlin'), (4, 'DE', 'Hamburg', 'Europe/Berlin'),
  (5, 'FR', 'Ile-de-France', 'Europe/Paris'), (6, 'FR', 'Provence', 'Europe/Paris'),
  (7, 'NL', 'Randstad', 'Europe/Amsterdam'), (8, 'PL', 'Masovia', 'Europe/Warsaw'),
  (9, 'PL', 'Lesser Poland', 'Europe/Warsaw'), (10, 'SE', 'Stockholm', 'Europe/Stockholm'),
  (11, 'GB', 'Greater London', 'Europe/London'), (12, 'GB', 'Scotland', 'Europe/London');

-- step: ref.exchange_rates
insert into ref.exchange_rates (currency_code, rate_date, rate_to_eur)
select c.code, (cfg.start_ts::date + d::int),
       round((case c.code when 'EUR' then 1 when 'USD' then 0.92 when 'GBP' then 1.17
              when 'PLN' then 0.23 else 0.088 end
              * (1 + 0.03 * sin(d / 29.0) + 0.01 * (pg_temp.r(d * 7 + length(c.code), 1) - 0.5))
             )::numeric, 6)
from cfg, ref.currencies c, generate_series(0, cfg.days - 1) d;

-- step: ref.order_statuses
insert into ref.order_statuses (code, label, is_final) values
  ('pending', 'Pending payment', false), ('paid', 'Paid', false),
  ('shipped', 'Shipped', false), ('delivered', 'Delivered', true),
  ('cancelled', 'Cancelled', true), ('returned', 'Returned', true);

-- step: ref.return_reasons
insert into ref.return_reasons (id, code, label, is_seller_fault) values
  (1, 'wrong_size', 'Wrong size', false), (2, 'not_as_described', 'Not as described', true),
  (3, 'damaged', 'Arrived damaged', true), (4, 'changed_mind', 'Changed my mind', false),
  (5, 'late_delivery', 'Arrived too late', true), (6, 'defective', 'Defective', true);

-- step: ref.cancellation_reasons
insert into ref.cancellation_reasons (id, code, label, initiated_by) values
  (1, 'customer_request', 'Customer changed their mind', 'customer'),
  (2, 'payment_failed', 'Payment failed', 'system'),
  (3, 'out_of_stock', 'Out of stock', 'seller'),
  (4, 'fraud_suspected', 'Fraud suspected', 'system'),
  (5, 'address_invalid', 'Address could not be verified', 'system');

-- step: users.acquisition_channels
insert into users.acquisition_channels (id, code, label, is_paid) values
  (1, 'organic', 'Organic search', false), (2, 'direct', 'Direct', false),
  (3, 'paid_search', 'Paid search', true), (4, 'social', 'Paid social', true),
  (5, 'referral', 'Referral', false), (6, 'email', 'Email', false),
  (7, 'affiliate', 'Affiliates', true);

-- step: product.categories
insert into product.categories (id, parent_id, name, slug, is_active)
select id, null, name, lower(replace(name, ' ', '-')), true
from (values (1, 'Electronics'), (2, 'Fashion'), (3, 'Home and Garden'), (4, 'Beauty'),
             (5, 'Sports'), (6, 'Toys'), (7, 'Books'), (8, 'Grocery'), (9, 'Automotive'),
             (10, 'Pets')) t(id, name);

-- step: product.categories (children, and a few dirty ones)
insert into product.categories (id, parent_id, name, slug, is_active)
select 10 + g, 1 + (g - 1) % 10,
       (array['Accessories', 'Essentials', 'Premium', 'Outlet', 'Kids'])[1 + (g - 1) / 10]
         || ' ' || (g - 1) % 10 + 1,
       'c-' || g, true
from generate_series(1, 50) g
union all
-- Data-quality traps: a duplicate name under the same parent, an inactive category, an empty slug.
select 61, 1, 'Accessories 1', 'c-1-dup', true
union all select 62, 2, 'Old stuff', 'old-stuff', false
union all select 63, 3, 'Misc', '', true;

-- step: product.brands
insert into product.brands (id, name, country_code)
select g, 'Brand ' || g, (array['DE','FR','NL','PL','SE','GB','CN','US'])[1 + (g * 7) % 8]
from generate_series(1, 150) g;

-- step: product.sellers
insert into product.sellers (id, name, country_code, contact_email, commission_rate, joined_at)
select g, 'Seller ' || g, (array['DE','FR','NL','PL','SE','GB','CN'])[1 + g % 7],
       'seller' || g || '@sellers.example', round((0.08 + 0.08 * pg_temp.r(g, 2))::numeric, 4),
       -- Sellers joined before the products they list were created.
       cfg.acc_start - (pg_temp.r(g, 3) * 600) * interval '1 day'
from cfg, generate_series(1, cfg.n_sellers) g;

-- step: product.suppliers
insert into product.suppliers (id, name, country_code, lead_time_days)
select g, 'Supplier ' || g, (array['DE','PL','CN','CN','US','NL'])[1 + g % 6],
       (3 + floor(pg_temp.r(g, 4) * 25))::smallint
from generate_series(1, 80) g;

-- step: product.products
insert into product.products (id, category_id, brand_id, seller_id, title, description, status,
                              created_at)
select g,
       case when pg_temp.r(g, 10) < 0.005 then null else 11 + floor(pg_temp.r(g, 11) * 53)::int end,
       case when pg_temp.r(g, 12) < 0.03 then null else 1 + floor(power(pg_temp.r(g, 13), 1.5) * 150)::int end,
       1 + floor(power(pg_temp.r(g, 14), 1.3) * cfg.n_sellers)::int,
       'Product ' || g,
       case when pg_temp.r(g, 15) < 0.04 then null else 'Description of product ' || g end,
       case when pg_temp.r(g, 16) < 0.004 then 'actve'
            when pg_temp.r(g, 16) < 0.06 then 'archived' else 'active' end,
       -- Listed before the year of orders (and before the oldest price change) starts.
       cfg.acc_start + (pg_temp.r(g, 17) * 280) * interval '1 day'
from cfg, generate_series(1, cfg.n_products) g;

-- step: product.skus
-- Linked SKUs first (ids 1..n_skus, 2-3 per product), then orphans with no product.
insert into product.skus (id, product_id, code, variant, unit_cost, weight_grams)
select g, 1 + (g - 1) % cfg.n_products, 'SKU-' || lpad(g::text, 8, '0'),
       (array['S','M','L','XL','one size'])[1 + (g / cfg.n_products) % 5],
       round((3 + power(pg_temp.r(1 + (g - 1) % cfg.n_products, 20), 2) * 180
              * (0.9 + 0.2 * pg_temp.r(g, 21)))::numeric, 2),
       (50 + pg_temp.r(g, 22) * 5000)::int
from cfg, generate_series(1, cfg.n_skus) g
union all
select cfg.n_skus + g, null, 'ORPHAN-' || g, null, round((5 + pg_temp.r(g, 23) * 50)::numeric, 2),
       null
from cfg, generate_series(1, cfg.n_orphans) g;

-- step: product.attributes
insert into product.attributes (id, name, is_required) values
  (1, 'colour', true), (2, 'material', true), (3, 'size_system', false), (4, 'origin', false),
  (5, 'warranty_months', false), (6, 'energy_class', false), (7, 'age_group', false),
  (8, 'pattern', false), (9, 'care', false), (10, 'volume_ml', false), (11, 'power_w', false),
  (12, 'pages', false);

-- step: product.product_attribute_values
insert into product.product_attribute_values (product_id, attribute_id, value)
select p, a, (array['red','blue','black','white','green','cotton','steel','plastic','wood'])
             [1 + floor(pg_temp.r(p * 13 + a, 30) * 9)::int]
from cfg, generate_series(1, cfg.n_products) p, generate_series(1, 4) a
-- Incomplete cards: 5% of products lack their required material attribute.
where not (a = 2 and pg_temp.r(p, 31) < 0.05);

-- step: product.images
insert into product.images (product_id, url, position)
select p, 'https://img.marketplace.example/p/' || p || '/' || k || '.jpg', k
from cfg, generate_series(1, cfg.n_products) p, generate_series(0, 3) k
where pg_temp.r(p, 40) >= 0.03 and k < 1 + floor(pg_temp.r(p, 41) * 4)
order by p, k;

-- step: product.prices
insert into product.prices (sku_id, currency_code, amount, updated_at)
select s.id, 'EUR', round((s.unit_cost * (1.35 + pg_temp.r(s.id, 50) * 1.1))::numeric, 2),
       cfg.start_ts + pg_temp.r(s.id, 51) * interval '365 days'
from cfg, product.skus s;

-- step: product.price_history
insert into product.price_history (sku_id, currency_code, old_amount, new_amount, changed_at)
select p.sku_id, 'EUR', round((p.amount * (0.9 + 0.2 * pg_temp.r(p.sku_id * 3 + k, 52)))::numeric, 2),
       p.amount, p.updated_at - (k * 40) * interval '1 day'
from product.prices p, generate_series(1, 2) k
order by p.sku_id, k;

-- step: product.product_suppliers
insert into product.product_suppliers (sku_id, supplier_id, unit_cost, is_primary)
select s.id, 1 + floor(power(pg_temp.r(s.product_id, 60), 1.4) * 80)::int,
       s.unit_cost, true
from product.skus s where s.product_id is not null;

-- step: logistics.warehouses
insert into logistics.warehouses (id, name, region_id, capacity_units) values
  (1, 'Berlin DC', 1, 400000), (2, 'Munich DC', 2, 250000), (3, 'Paris DC', 5, 300000),
  (4, 'Rotterdam DC', 7, 350000), (5, 'Warsaw DC', 8, 200000), (6, 'London DC', 11, 220000);

-- step: logistics.carriers
insert into logistics.carriers (id, name, sla_hours) values
  (1, 'SwiftPost', 48), (2, 'EuroParcel', 72), (3, 'BudgetShip', 96), (4, 'CityCourier', 24),
  (5, 'NordFreight', 72);

-- step: logistics.carrier_services
insert into logistics.carrier_services (id, carrier_id, name, cost_per_parcel)
select c * 10 + k, c, (array['standard', 'express'])[k],
       round((3.5 + c * 0.6 + (k - 1) * 4.0)::numeric, 2)
from generate_series(1, 5) c, generate_series(1, 2) k;

-- step: logistics.delay_reasons
insert into logistics.delay_reasons (id, code, label) values
  (1, 'weather', 'Weather'), (2, 'capacity', 'Carrier capacity'), (3, 'address', 'Address problem'),
  (4, 'customs', 'Customs hold'), (5, 'warehouse_backlog', 'Warehouse backlog'),
  (6, 'lost_scan', 'Missing scan');

-- step: inventory.storage_locations
insert into inventory.storage_locations (id, warehouse_id, code, capacity_units)
-- Sized to the catalogue: about half full.
select w * 1000 + k, w, 'A' || lpad(k::text, 3, '0'),
       greatest(20, round((1500 + pg_temp.r(w * 1000 + k, 70) * 2500) * cfg.scale))::int
from cfg, generate_series(1, 6) w, generate_series(1, 50) k;
