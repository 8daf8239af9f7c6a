-- Demo data, part 2: customers, marketing, orders and what follows each order.

-- step: users.accounts
-- Account i signs up at fraction (i/A)^0.6 of the two years before the anchor: sign-ups grow.
insert into users.accounts (id, email, region_id, channel_id, status, created_at, last_seen_at)
select i, 'customer' || i || '@mail.example',
       1 + width_bucket(pg_temp.r(i, 100), array[0.16,0.30,0.42,0.50,0.60,0.66,0.75,0.83,0.88,0.93,0.97]),
       1 + width_bucket(pg_temp.r(i, 101), array[0.30,0.45,0.62,0.77,0.85,0.93]),
       case when pg_temp.r(i, 102) < 0.02 then 'closed' else 'active' end,
       cfg.acc_start + (least(729, floor(power(i::float8 / cfg.n_accounts, 0.6) * 730))
                        + pg_temp.r(i, 103)) * interval '1 day',
       null
from cfg, generate_series(1, cfg.n_accounts) i;

-- step: users.profiles
insert into users.profiles (account_id, first_name, last_name, phone, birth_date, gender, updated_at)
select a.id, (array['Anna','Ben','Clara','David','Emma','Felix','Greta','Hugo','Ida','Jonas'])[1 + a.id % 10],
       (array['Schmidt','Martin','Nowak','Jansen','Smith','Berg','Dubois','Weber'])[1 + (a.id / 10) % 8],
       case when pg_temp.r(a.id, 110) < 0.3 then null else '+49 30 ' || lpad((a.id * 7919 % 10000000)::text, 7, '0') end,
       date '1950-01-01' + floor(pg_temp.r(a.id, 111) * 20000)::int,
       (array['f','m','x',null])[1 + floor(pg_temp.r(a.id, 112) * 4)::int],
       a.created_at
from users.accounts a where pg_temp.r(a.id, 113) < 0.92;

-- step: users.addresses
insert into users.addresses (account_id, region_id, line1, city, postal_code, is_default)
select a.id, a.region_id, k || ' Example Street ' || a.id, 'City ' || a.region_id,
       lpad((10000 + a.id % 89999)::text, 5, '0'), k = 1
from users.accounts a, generate_series(1, 2) k
where k = 1 or pg_temp.r(a.id, 120) < 0.3
order by a.id, k;

-- step: users.credentials
insert into users.credentials (account_id, password_hash, mfa_enabled, changed_at)
select a.id, '$argon2id$v=19$' || md5(a.id::text), pg_temp.r(a.id, 130) < 0.2, a.created_at
from users.accounts a;

-- step: users.login_history
insert into users.login_history (account_id, logged_in_at, ip_address, user_agent, succeeded)
select a.id, a.created_at + (pg_temp.r(a.id * 8 + k, 140) * (cfg.anchor - a.created_at)),
       ('10.' || (a.id % 250) || '.' || k || '.' || (a.id * k) % 250)::inet,
       (array['Firefox','Chrome','Safari','App/iOS','App/Android'])[1 + (a.id + k) % 5],
       pg_temp.r(a.id * 8 + k, 141) > 0.04
from cfg, users.accounts a, generate_series(1, 4) k
order by a.id, k;

-- step: users.settings
insert into users.settings (account_id, language, currency_code, newsletter)
select a.id, (array['de','en','fr','nl','pl','sv'])[1 + a.region_id % 6],
       case when a.region_id between 8 and 9 then 'PLN' when a.region_id = 10 then 'SEK'
            when a.region_id >= 11 then 'GBP' else 'EUR' end,
       pg_temp.r(a.id, 150) < 0.4
from users.accounts a;

-- step: users.consents
insert into users.consents (account_id, purpose, granted, recorded_at)
select a.id, (array['marketing_email','personalisation','analytics'])[k],
       pg_temp.r(a.id * 3 + k, 160) < 0.6, a.created_at
from users.accounts a, generate_series(1, 3) k
order by a.id, k;

-- step: users.wishlists
insert into users.wishlists (account_id, product_id, added_at)
select a.id, 1 + (a.id * 7919) % cfg.n_products, a.created_at + interval '2 days'
from cfg, users.accounts a
where pg_temp.r(a.id, 170) < 0.35 and a.created_at + interval '2 days' < cfg.anchor;

-- step: users.referrals
insert into users.referrals (referrer_id, referred_id, created_at)
select 1 + floor(pg_temp.r(a.id, 180) * (a.id - 1))::int, a.id, a.created_at
from users.accounts a where a.channel_id = 5 and a.id > 1
order by a.id;

-- step: marketing.ad_channels
insert into marketing.ad_channels (id, name) values
  (1, 'search'), (2, 'social'), (3, 'display'), (4, 'email'), (5, 'affiliates');

-- step: marketing.campaigns
insert into marketing.campaigns (id, name, channel_id, starts_at, ends_at, budget)
select c, (array['Spring sale','Summer deals','Back to school','Black Friday','Christmas',
                 'New year','Brand week','Flash sale'])[1 + (c - 1) % 8] || ' ' || c,
       1 + (c - 1) % 5, cfg.start_ts + ((c - 1) * 9) * interval '1 day',
       cfg.start_ts + ((c - 1) * 9 + 14) * interval '1 day',
       (5000 + floor(pg_temp.r(c, 200) * 45000))::numeric
from cfg, generate_series(1, 40) c;

-- step: marketing.ad_spend
insert into marketing.ad_spend (campaign_id, day, amount, impressions, clicks)
select c.id, d::date, round((c.budget / 15 * (0.7 + 0.6 * pg_temp.r(c.id * 40 + i, 210)))::numeric, 2),
       (20000 + pg_temp.r(c.id * 40 + i, 211) * 80000)::int,
       (300 + pg_temp.r(c.id * 40 + i, 212) * 2500)::int
from marketing.campaigns c,
     lateral generate_series(c.starts_at, c.ends_at - interval '1 day', interval '1 day')
       with ordinality as x(d, i);

-- step: marketing.discounts
insert into marketing.discounts (id, campaign_id, kind, value, min_order_total)
select c, case when c <= 40 then c end, case when c % 4 = 0 then 'amount' else 'percent' end,
       case when c % 4 = 0 then 10 else (array[5,10,15,20,25,30])[1 + c % 6] end,
       case when c % 3 = 0 then 50 else 0 end
from generate_series(1, 48) c;

-- step: marketing.promo_codes
insert into marketing.promo_codes (id, code, discount_id, max_uses, valid_from, valid_until)
select d.id * 2 - 1 + k, upper(substr(md5(d.id::text || k), 1, 8)), d.id,
       case when k = 1 then null else 500 end, cfg.start_ts, cfg.anchor + interval '30 days'
from cfg, marketing.discounts d, generate_series(0, 1) k;

-- step: marketing.affiliates
insert into marketing.affiliates (id, name, commission_rate, contact_email)
select g, 'Affiliate ' || g, round((0.03 + 0.05 * pg_temp.r(g, 220))::numeric, 4),
       'partner' || g || '@affiliates.example'
from generate_series(1, 10) g;

-- step: tmp.orders
-- The order skeleton: day (weekly and seasonal rhythm), hour (evening peak), customer (only
-- accounts signed up before that day, older ones buying more often), promo, and its whole
-- timeline: payment, cancellation, shipping, delivery, return. Each step follows the one
-- before; a step that would happen at or after the anchor has not happened yet (NULL), and
-- the status is the order's status at the anchor.
create temp table tmp_orders on commit drop as
select t.*,
       case when t.cancel_at is not null then 'cancelled'
            when t.paid_at is null then 'pending'
            when t.ship_at is null then 'paid'
            when t.deliver_at is null then 'shipped'
            when t.received_at is not null then 'returned'
            when pg_temp.r(t.id, 314) < 0.002 then (array['shiped','Delivered ','unknown'])[1 + t.id % 3]
            else 'delivered' end as status
from cfg, lateral (
  select b.id, b.d, b.placed_at, b.account_id, b.promo, b.pct, b.cancelling, b.reason_id,
         b.carrier_id, b.service_id, b.region_id, b.warehouse_id,
         case when b.paid_at_plan < cfg.anchor then b.paid_at_plan end as paid_at,
         case when b.cancel_plan < cfg.anchor then b.cancel_plan end as cancel_at,
         case when b.ship_plan < cfg.anchor then b.ship_plan end as ship_at,
         case when b.ship_plan < cfg.anchor then b.ship_plan + b.sla end as promised_at,
         case when b.deliver_plan < cfg.anchor then b.deliver_plan end as deliver_at,
         case when b.request_plan < cfg.anchor then b.request_plan end as requested_at,
         case when b.request_plan + b.transit < cfg.anchor then b.request_plan + b.transit end
           as received_at,
         case when b.request_plan + b.transit + b.refund_wait < cfg.anchor
              then b.request_plan + b.transit + b.refund_wait end as refunded_at
  from (
    select a.*,
           -- Cancelled before shipping: a failed payment some hours after the order, any other
           -- reason within hours of the payment.
           case when not a.cancelling then null
                when a.reason_id = 2 then a.placed_at + (1 + pg_temp.r(a.id, 315) * 5) * interval '1 hour'
                else a.paid_at_plan + (0.2 + pg_temp.r(a.id, 315) * 3.5) * interval '1 hour' end
             as cancel_plan,
           case when not a.cancelling then a.ship_plan0 end as ship_plan,
           case when not a.cancelling then a.ship_plan0 + a.sla * (0.55 + 0.4 * pg_temp.r(a.id, 502))
             + case when pg_temp.r(a.id, 503) < case when a.carrier_id = 3 then 0.22 else 0.04 end
                                                + case when a.region_id = 6 then 0.12 else 0 end
                    then (6 + pg_temp.r(a.id, 504) * 60) * interval '1 hour' + a.sla * 0.45
                    else interval '0' end end as deliver_plan
    from (
      select o.*,
             case when o.cancelling and o.reason_id = 2 then null
                  when pg_temp.r(o.id, 316) < 0.04  -- bank transfers: paid days later
                    then o.placed_at + (0.3 + pg_temp.r(o.id, 317) * 2.7) * interval '1 day'
                  else o.placed_at + (2 + pg_temp.r(o.id, 317) * 6) * interval '1 minute' end
               as paid_at_plan
      from (
        select x.*, c.carrier_id, c.carrier_id * 10 + 1 + (pg_temp.r(x.id, 501) < 0.2)::int as service_id,
               (array[48, 72, 96, 24, 72])[c.carrier_id] * interval '1 hour' as sla,
               -- The nearest distribution centre ships.
               case when x.region_id in (1, 4) then 1 when x.region_id in (2, 3) then 2
                    when x.region_id in (5, 6) then 3 when x.region_id = 7 then 4
                    when x.region_id in (8, 9, 10) then 5 else 6 end as warehouse_id
        from (
          select base.i as id, base.d, p.placed_at, p.account_id, ac.region_id, p.promo, p.pct,
                 pg_temp.r(base.i, 311) < 0.05 as cancelling,
                 1 + width_bucket(pg_temp.r(base.i, 330), array[0.45, 0.65, 0.85, 0.93]) as reason_id
          from (select i, width_bucket(pg_temp.r(i, 301), cfg.day_cdf) as d
                from generate_series(1, cfg.n_orders) i) base,
          lateral (
            select cfg.start_ts + base.d * interval '1 day'
                   + width_bucket(pg_temp.r(base.i, 302), cfg.hour_cdf) * interval '1 hour'
                   + pg_temp.r(base.i, 303) * interval '1 hour' as placed_at,
                   -- Only accounts created on an earlier day (see users.accounts).
                   1 + floor(greatest(1, ceil(cfg.n_accounts * power((base.d + 364) / 730.0, 1 / 0.6)) - 1)
                             * power(pg_temp.r(base.i, 304), 1.6))::bigint as account_id,
                   pg_temp.r(base.i, 305) < case when extract(month from cfg.start_ts + base.d * interval '1 day')
                                                 in (11, 12) then 0.30 else 0.16 end as promo,
                   (array[0.05, 0.10, 0.15, 0.20, 0.25, 0.30])[1 + floor(power(pg_temp.r(base.i, 306), 1.5) * 6)::int] as pct
          ) p
          join users.accounts ac on ac.id = p.account_id
        ) x,
        lateral (select 1 + width_bucket(pg_temp.r(x.id, 500), array[0.35, 0.6, 0.8, 0.92]) as carrier_id) c
      ) o
    ) a0,
    lateral (select a0.*, a0.paid_at_plan + (4 + pg_temp.r(a0.id, 506) * 30) * interval '1 hour' as ship_plan0) a
  ) b0,
  lateral (
    select b0.*,
           -- A return is asked for after delivery, the parcel arrives days later, the refund follows.
           -- Serial returners are among the most frequent buyers.
           case when pg_temp.r(b0.id, 312) < case when b0.account_id <= cfg.n_accounts * 0.05
                                                       and pg_temp.r(b0.account_id, 313) < 0.4
                                                  then 0.45 else 0.04 end
                then b0.deliver_plan + (1 + pg_temp.r(b0.id, 341) * 13) * interval '1 day' end as request_plan,
           (2 + pg_temp.r(b0.id, 342) * 6) * interval '1 day' as transit,
           (0.5 + pg_temp.r(b0.id, 343) * 2.5) * interval '1 day' as refund_wait
  ) b
) t;

-- step: tmp.items
create temp table tmp_items on commit drop as
select row_number() over (order by o.id, k) as id, o.id as order_id, k, s.sku_id, s.quantity,
       p.amount as unit_price,
       case when o.promo then round((p.amount * s.quantity * o.pct)::numeric, 2) else 0 end as discount
from tmp_orders o,
     lateral generate_series(1, 1 + floor(power(pg_temp.r(o.id, 320), 2) * 4)::int) k,
     lateral (select 1 + floor((select n_skus from cfg) * power(pg_temp.r(o.id * 8 + k, 321), 2.2))::bigint as sku_id,
                     1 + (pg_temp.r(o.id * 8 + k, 322) < 0.15)::int
                       + (pg_temp.r(o.id * 8 + k, 323) < 0.05)::int as quantity) s,
     product.prices p
where p.sku_id = s.sku_id and p.currency_code = 'EUR';

-- step: orders.orders
insert into orders.orders (id, account_id, session_id, address_id, region_id, status, placed_at,
                           subtotal, discount_total, shipping_fee, total)
select o.id, o.account_id, null,
       (select min(ad.id) from users.addresses ad where ad.account_id = o.account_id),
       o.region_id, o.status, o.placed_at, t.subtotal, t.discount,
       case when t.subtotal - t.discount >= 50 then 0 else 4.99 end,
       t.subtotal - t.discount + case when t.subtotal - t.discount >= 50 then 0 else 4.99 end
from tmp_orders o
join (select order_id, sum(unit_price * quantity) as subtotal, sum(discount) as discount
      from tmp_items group by order_id) t on t.order_id = o.id
order by o.id;

-- step: orders.order_items
insert into orders.order_items (id, order_id, sku_id, quantity, unit_price, discount)
select id, order_id, sku_id, quantity, unit_price, discount from tmp_items order by id;

-- step: orders.order_status_history
-- The statuses an order went through, each when it happened; agents record cancellations and
-- returns (admins 1-12 are all active).
insert into orders.order_status_history (order_id, status, changed_at, changed_by_admin_id)
select o.id, s.status, s.at,
       case when s.status in ('cancelled', 'returned') and (s.status = 'returned' or o.reason_id <> 2)
            then 1 + o.id % 12 end
from tmp_orders o,
     lateral (values ('pending', o.placed_at), ('paid', o.paid_at), ('cancelled', o.cancel_at),
                     ('shipped', o.ship_at), ('delivered', o.deliver_at),
                     ('returned', o.received_at)) s(status, at)
where s.at is not null
order by o.id, s.at;

-- step: orders.cancellations
-- Only a captured payment is refunded.
insert into orders.cancellations (order_id, reason_id, cancelled_at, refunded_amount)
select o.id, t.reason_id, t.cancel_at, case when t.paid_at is null then 0 else o.total end
from orders.orders o join tmp_orders t on t.id = o.id
where t.cancel_at is not null order by o.id;

-- step: orders.returns
insert into orders.returns (id, order_id, account_id, reason_id, requested_at, received_at, status)
select row_number() over (order by t.id), t.id, t.account_id,
       1 + width_bucket(pg_temp.r(t.id, 340), array[0.32, 0.50, 0.62, 0.84, 0.92]),
       t.requested_at, t.received_at,
       case when t.refunded_at is not null then 'refunded'
            when t.received_at is not null then 'received' else 'requested' end
from tmp_orders t where t.requested_at is not null;

-- step: orders.return_items
-- The first line always, further lines of the order sometimes.
insert into orders.return_items (return_id, order_item_id, quantity, refund_amount, restockable)
select r.id, i.id, i.quantity, i.unit_price * i.quantity - i.discount, r.reason_id not in (3, 6)
from orders.returns r
join tmp_items i on i.order_id = r.order_id
where i.k = 1 or pg_temp.r(i.id, 344) < 0.35
order by r.id, i.id;

-- step: orders.order_notes
insert into orders.order_notes (order_id, author, body, created_at)
select o.id, case when o.id % 2 = 0 then 'customer' else 'agent' end,
       'Please leave the parcel with the neighbour', o.placed_at + interval '10 minutes'
from cfg, orders.orders o
where pg_temp.r(o.id, 350) < 0.03 and o.placed_at + interval '10 minutes' < cfg.anchor
order by o.id;

-- step: orders.invoices
-- Issued when the payment is captured; a cancelled order is not invoiced.
insert into orders.invoices (order_id, number, issued_at, amount, vat_amount)
select o.id, 'INV-' || lpad(o.id::text, 10, '0'), t.paid_at, o.total,
       round(o.total * 19 / 119, 2)
from orders.orders o join tmp_orders t on t.id = o.id
where t.paid_at is not null and t.cancel_at is null order by o.id;

-- step: marketing.promo_redemptions
insert into marketing.promo_redemptions (promo_code_id, order_id, account_id, discount_amount,
                                         redeemed_at)
select 1 + least(95, 2 * ((o.placed_at::date - cfg.start_ts::date) / 9)
                     + floor(pg_temp.r(o.id, 360) * 2)::int),
       o.id, o.account_id, o.discount_total, o.placed_at
from cfg, orders.orders o where o.discount_total > 0 order by o.id;
