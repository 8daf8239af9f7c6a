-- Demo data, part 3: payments, logistics, inventory, support.

-- step: payments.payment_methods
insert into payments.payment_methods (id, account_id, kind, card_last4, provider_token, created_at)
select a.id, a.id, k.kind, case when k.kind = 'card' then lpad((a.id * 37 % 10000)::text, 4, '0') end,
       'tok_' || md5('pm' || a.id), a.created_at
from users.accounts a,
     lateral (select (array['card','card','card','paypal','bank_transfer','wallet'])
                     [1 + floor(pg_temp.r(a.id, 400) * 6)::int] as kind) k
where pg_temp.r(a.id, 401) < 0.75;

-- step: payments.payments
insert into payments.payments (id, order_id, method_id, amount, currency_code, status, created_at,
                               captured_at)
select o.id, o.id, pm.id, o.total, 'EUR',
       case when o.status = 'pending' then 'authorised'
            when o.status = 'cancelled' and pg_temp.r(o.id, 330) between 0.45 and 0.65 then 'failed'
            else 'captured' end,
       o.placed_at + interval '1 minute',
       case when o.status not in ('pending') then o.placed_at + interval '5 minutes' end
from orders.orders o left join payments.payment_methods pm on pm.id = o.account_id
order by o.id;

-- step: payments.payment_attempts
insert into payments.payment_attempts (payment_id, attempted_at, succeeded, decline_code)
select p.id, p.created_at + k * interval '30 seconds', not (k = 0 and first_declined),
       case when k = 0 and first_declined then (array['insufficient_funds','do_not_honor','expired_card'])[1 + p.id % 3] end
from payments.payments p,
     lateral (select pg_temp.r(p.id, 410) < 0.08 as first_declined) f,
     lateral generate_series(0, case when f.first_declined then 1 else 0 end) k
order by p.id, k;

-- step: payments.refunds
insert into payments.refunds (payment_id, return_id, amount, refunded_at)
select r.order_id, r.id, ri.refund_amount, r.received_at + interval '1 day'
from orders.returns r join orders.return_items ri on ri.return_id = r.id
union all
select c.order_id, null, c.refunded_amount, c.cancelled_at + interval '1 hour'
from orders.cancellations c join payments.payments p on p.id = c.order_id
where p.status = 'captured'
order by 1;

-- step: payments.chargebacks
insert into payments.chargebacks (payment_id, amount, reason, opened_at, won)
select p.id, p.amount, (array['fraud','not_received','not_as_described'])[1 + p.id % 3],
       p.created_at + interval '20 days', case when p.id % 2 = 0 then true end
from payments.payments p where p.status = 'captured' and pg_temp.r(p.id, 420) < 0.002;

-- step: payments.fees
insert into payments.fees (payment_id, amount, charged_at)
select p.id, round(p.amount * 0.014 + 0.25, 2), p.captured_at
from payments.payments p where p.status = 'captured';

-- step: payments.payouts
insert into payments.payouts (seller_id, period_start, period_end, amount, paid_at)
select pr.seller_id, m::date, (m + interval '1 month' - interval '1 day')::date,
       round(sum(oi.unit_price * oi.quantity - oi.discount) * (1 - max(s.commission_rate)), 2),
       case when m + interval '1 month' < cfg.anchor then m + interval '1 month 5 days' end
from cfg, orders.order_items oi
join orders.orders o on o.id = oi.order_id and o.status in ('delivered', 'returned')
join product.skus sk on sk.id = oi.sku_id
join product.products pr on pr.id = sk.product_id
join product.sellers s on s.id = pr.seller_id,
lateral (select date_trunc('month', o.placed_at) as m) mm
group by pr.seller_id, m, cfg.anchor
order by pr.seller_id, m;

-- step: payments.payout_items
insert into payments.payout_items (payout_id, order_item_id, gross, commission)
select po.id, oi.id, oi.unit_price * oi.quantity - oi.discount,
       round((oi.unit_price * oi.quantity - oi.discount) * s.commission_rate, 2)
from orders.order_items oi
join orders.orders o on o.id = oi.order_id and o.status in ('delivered', 'returned')
join product.skus sk on sk.id = oi.sku_id
join product.products pr on pr.id = sk.product_id
join product.sellers s on s.id = pr.seller_id
join payments.payouts po on po.seller_id = pr.seller_id
                        and po.period_start = date_trunc('month', o.placed_at)::date
order by oi.id;

-- step: logistics.shipments
-- Late deliveries concentrate at BudgetShip (carrier 3) and in Provence (region 6).
insert into logistics.shipments (id, order_id, warehouse_id, carrier_id, service_id, region_id,
                                 shipped_at, promised_at, delivered_at, shipping_cost)
select o.id, o.id, w.id, c.carrier_id, c.carrier_id * 10 + 1 + (pg_temp.r(o.id, 501) < 0.2)::int,
       o.region_id, ship, ship + c.sla,
       case when o.status in ('delivered', 'returned') then
         ship + c.sla * (0.55 + 0.4 * pg_temp.r(o.id, 502))
         + case when pg_temp.r(o.id, 503) < case when c.carrier_id = 3 then 0.22 else 0.04 end
                                             + case when o.region_id = 6 then 0.12 else 0 end
                then (6 + pg_temp.r(o.id, 504) * 60) * interval '1 hour' + c.sla * 0.45
                else interval '0' end
       end,
       round((3.5 + c.carrier_id * 0.6 + pg_temp.r(o.id, 505) * 2)::numeric, 2)
from orders.orders o,
     lateral (select 1 + width_bucket(pg_temp.r(o.id, 500), array[0.35, 0.6, 0.8, 0.92]) as carrier_id) c0,
     lateral (select c0.carrier_id, (select sla_hours from logistics.carriers where id = c0.carrier_id)
                                    * interval '1 hour' as sla) c,
     lateral (select case when o.region_id in (1, 4) then 1 when o.region_id in (2, 3) then 2
                          when o.region_id in (5, 6) then 3 when o.region_id = 7 then 4
                          when o.region_id in (8, 9, 10) then 5 else 6 end as id) w,
     lateral (select o.placed_at + (4 + pg_temp.r(o.id, 506) * 30) * interval '1 hour' as ship) s
where o.status in ('shipped', 'delivered', 'returned')
order by o.id;

-- step: logistics.shipment_items
insert into logistics.shipment_items (shipment_id, order_item_id, quantity)
select s.id, oi.id, oi.quantity
from logistics.shipments s join orders.order_items oi on oi.order_id = s.order_id
order by oi.id;

-- step: logistics.delivery_events
insert into logistics.delivery_events (shipment_id, event, occurred_at, location)
select s.id, e.event, e.at, 'Hub ' || s.warehouse_id
from logistics.shipments s,
     lateral (values ('picked_up', s.shipped_at), ('in_transit', s.shipped_at + interval '8 hours'),
                     ('out_for_delivery', s.delivered_at - interval '5 hours'),
                     ('delivered', s.delivered_at)) e(event, at)
where e.at is not null
order by s.id, e.at;

-- step: logistics.shipment_delays
insert into logistics.shipment_delays (shipment_id, reason_id, delay_hours, reported_at)
select s.id,
       case when s.carrier_id = 3 then 2 when s.region_id = 6 then 1
            else 1 + floor(pg_temp.r(s.id, 510) * 6)::int end,
       ceil(extract(epoch from s.delivered_at - s.promised_at) / 3600)::int,
       s.promised_at
from logistics.shipments s where s.delivered_at > s.promised_at order by s.id;

-- step: logistics.picking_tasks
insert into logistics.picking_tasks (order_id, warehouse_id, started_at, completed_at, items_picked)
select s.order_id, s.warehouse_id, s.shipped_at - (2 + pg_temp.r(s.id, 520) * 3) * interval '1 hour',
       s.shipped_at - (0.2 + pg_temp.r(s.id, 521)) * interval '1 hour'
         + case when s.warehouse_id = 3 then interval '40 minutes' else interval '0' end,
       (select count(*) from logistics.shipment_items si where si.shipment_id = s.id)
from logistics.shipments s order by s.id;

-- step: inventory.stock_levels
insert into inventory.stock_levels (sku_id, location_id, on_hand, reserved, updated_at)
select s.id, (1 + s.id % 6) * 1000 + 1 + (s.id / 6) % 50,
       case when pg_temp.r(s.id, 600) < 0.06 then 0 else (floor(pg_temp.r(s.id, 601) * 40))::int end,
       0, cfg.anchor - interval '1 hour'
from cfg, product.skus s;

-- step: inventory.stock_movements
insert into inventory.stock_movements (sku_id, location_id, kind, quantity, moved_at)
select m.sku_id, (1 + m.sku_id % 6) * 1000 + 1 + (m.sku_id / 6) % 50, m.kind, m.quantity, m.at
from (
  select oi.sku_id, 'sale' as kind, -oi.quantity as quantity, s.shipped_at as at, oi.id as k
  from orders.order_items oi join logistics.shipments s on s.order_id = oi.order_id
  union all
  select oi.sku_id, 'return', ri.quantity, r.received_at, oi.id
  from orders.return_items ri join orders.returns r on r.id = ri.return_id
  join orders.order_items oi on oi.id = ri.order_item_id where ri.restockable
  union all
  select s.id, 'receipt', (20 + floor(pg_temp.r(s.id * 12 + g, 610) * 80))::int,
         cfg.start_ts + (g * 30 + pg_temp.r(s.id * 12 + g, 611) * 20) * interval '1 day', -g
  from cfg, product.skus s, generate_series(0, 11) g
  where s.product_id is not null and pg_temp.r(s.id * 12 + g, 612) < 0.5
) m
order by m.at, m.sku_id, m.k;

-- step: inventory.replenishment_orders
insert into inventory.replenishment_orders (id, supplier_id, warehouse_id, is_automatic, created_at,
                                            expected_at, received_at)
select g, 1 + floor(pg_temp.r(g, 620) * 80)::int, 1 + g % 6, pg_temp.r(g, 621) < 0.7,
       cfg.start_ts + (g::float8 / cfg.n_replenishments) * interval '365 days',
       cfg.start_ts + (g::float8 / cfg.n_replenishments) * interval '365 days' + interval '7 days',
       case when pg_temp.r(g, 622) < 0.9 then cfg.start_ts + (g::float8 / cfg.n_replenishments)
            * interval '365 days' + (5 + pg_temp.r(g, 623) * 6) * interval '1 day' end
from cfg, generate_series(1, cfg.n_replenishments) g;

-- step: inventory.replenishment_order_lines
insert into inventory.replenishment_order_lines (order_id, sku_id, quantity, unit_cost)
select distinct on (ro.id, sku) ro.id, sku, (10 + floor(pg_temp.r(ro.id * 5 + k, 630) * 90))::int,
       sk.unit_cost
from cfg, inventory.replenishment_orders ro, generate_series(1, 5) k,
     lateral (select 1 + floor(pg_temp.r(ro.id * 5 + k, 631) * cfg.n_skus)::bigint as sku) x
join product.skus sk on sk.id = x.sku
order by ro.id, sku;

-- step: inventory.stockouts
insert into inventory.stockouts (sku_id, started_at, ended_at)
select s.id, cfg.start_ts + (pg_temp.r(s.id * 3 + k, 640) * 330) * interval '1 day',
       case when pg_temp.r(s.id * 3 + k, 641) < 0.1 then null
            else cfg.start_ts + (pg_temp.r(s.id * 3 + k, 640) * 330 + 1 + pg_temp.r(s.id * 3 + k, 642) * 20)
                 * interval '1 day' end
from cfg, product.skus s, generate_series(1, 2) k
where s.product_id is not null and pg_temp.r(s.id * 3 + k, 643) < 0.12
order by 2, 1;

-- step: inventory.write_offs
insert into inventory.write_offs (sku_id, quantity, cost, reason, written_off_at)
select sk.id, q, sk.unit_cost * q, (array['damaged','expired','lost','theft'])[1 + g % 4],
       cfg.start_ts + (g::float8 / cfg.n_write_offs) * interval '365 days'
from cfg, generate_series(1, cfg.n_write_offs) g,
     lateral (select 1 + floor(pg_temp.r(g, 650) * cfg.n_skus)::bigint as sku_id,
                     (1 + floor(pg_temp.r(g, 651) * 5))::int as q) x
join product.skus sk on sk.id = x.sku_id;

-- step: inventory.cycle_counts
insert into inventory.cycle_counts (location_id, sku_id, counted, expected, counted_at)
select sl.location_id, sl.sku_id, sl.on_hand - (pg_temp.r(sl.sku_id, 660) < 0.1)::int, sl.on_hand,
       cfg.anchor - (pg_temp.r(sl.sku_id, 661) * 60) * interval '1 day'
from cfg, inventory.stock_levels sl where pg_temp.r(sl.sku_id, 662) < 0.2 order by sl.sku_id;

-- step: support.topics
insert into support.topics (id, code, label) values
  (1, 'delivery', 'Where is my order'), (2, 'return', 'Returns and refunds'),
  (3, 'payment', 'Payment problem'), (4, 'product_quality', 'Product quality'),
  (5, 'account', 'Account and login'), (6, 'promo', 'Promo codes'),
  (7, 'seller', 'Seller complaint'), (8, 'other', 'Other');

-- step: support.sla_policies
insert into support.sla_policies (id, priority, first_response_minutes, resolution_minutes) values
  (1, 'low', 1440, 4320), (2, 'normal', 480, 2880), (3, 'high', 60, 480);

-- step: support.agents
insert into support.agents (id, display_name, team, active)
select g, 'Agent ' || g, (array['tier1','tier1','tier2','billing'])[1 + g % 4], g % 9 <> 0
from generate_series(1, 25) g;

-- step: support.tickets
-- Some tickets breach their SLA (slow first response or resolution); more in December.
insert into support.tickets (id, account_id, order_id, product_id, topic_id, sla_policy_id, agent_id,
                             channel, status, created_at, first_response_at, resolved_at)
select g, o.account_id, o.id,
       case when topic in (4, 7) then (select sk.product_id from orders.order_items oi
                                       join product.skus sk on sk.id = oi.sku_id
                                       where oi.order_id = o.id order by oi.id limit 1) end,
       topic, sla, 1 + floor(pg_temp.r(g, 702) * 25)::int,
       (array['email','chat','phone'])[1 + floor(pg_temp.r(g, 703) * 3)::int],
       case when created > cfg.anchor - interval '2 days' and pg_temp.r(g, 704) < 0.5 then 'open'
            else 'resolved' end,
       created, created + (sla_minutes.first * (0.2 + pg_temp.r(g, 705) * (1.0 + busy))) * interval '1 minute',
       case when created > cfg.anchor - interval '2 days' and pg_temp.r(g, 704) < 0.5 then null
            else created + (sla_minutes.resolve * (0.15 + pg_temp.r(g, 706) * (0.95 + busy))) * interval '1 minute' end
from cfg, generate_series(1, cfg.n_tickets) g,
     lateral (select 1 + floor(pg_temp.r(g, 700) * cfg.n_orders)::bigint as order_id) x
join orders.orders o on o.id = x.order_id,
lateral (select 1 + width_bucket(pg_temp.r(g, 701), array[0.35, 0.55, 0.65, 0.78, 0.86, 0.92, 0.97]) as topic,
                1 + width_bucket(pg_temp.r(g, 707), array[0.3, 0.85]) as sla,
                o.placed_at + (1 + pg_temp.r(g, 708) * 10) * interval '1 day' as created) t,
lateral (select case when extract(month from t.created) = 12 then 0.6 else 0.2 end as busy) b,
lateral (select first_response_minutes as first, resolution_minutes as resolve
         from support.sla_policies where id = t.sla) sla_minutes
where t.created < cfg.anchor;

-- step: support.messages
insert into support.messages (ticket_id, from_agent, body, sent_at)
select t.id, k % 2 = 0, case when k % 2 = 0 then 'Thanks for reaching out, we are on it.'
                             else 'Hello, I have a problem with my order.' end,
       t.created_at + k * interval '3 hours'
from support.tickets t, generate_series(1, 3) k order by t.id, k;

-- step: support.ticket_events
insert into support.ticket_events (ticket_id, event, occurred_at)
select t.id, e.event, e.at
from support.tickets t,
     lateral (values ('created', t.created_at), ('first_response', t.first_response_at),
                     ('resolved', t.resolved_at)) e(event, at)
where e.at is not null order by t.id, e.at;

-- step: support.ratings
insert into support.ratings (ticket_id, score, comment, rated_at)
select t.id,
       (1 + width_bucket(pg_temp.r(t.id, 720), array[0.08, 0.15, 0.30, 0.55]))::smallint,
       case when pg_temp.r(t.id, 721) < 0.2 then 'Agent was helpful' end,
       t.resolved_at + interval '1 hour'
from support.tickets t where t.resolved_at is not null and pg_temp.r(t.id, 722) < 0.6;

-- step: support.nps_responses
insert into support.nps_responses (account_id, score, answered_at)
select a.id, least(10, floor(pg_temp.r(a.id, 730) * 4 + pg_temp.r(a.id, 731) * 8))::smallint,
       cfg.start_ts + pg_temp.r(a.id, 732) * interval '365 days'
from cfg, users.accounts a where pg_temp.r(a.id, 733) < 0.25 and a.created_at < cfg.anchor - interval '30 days';

-- step: product.reviews
-- Products of a few suppliers (id divisible by 11) get bad reviews: the problem-products report.
insert into product.reviews (product_id, account_id, rating, body, created_at)
select sk.product_id, o.account_id,
       (case when ps.supplier_id % 11 = 0 then 1 + floor(pg_temp.r(o.id, 450) * 3)
             else least(5, 2 + floor(power(pg_temp.r(o.id, 450), 0.5) * 4)) end)::smallint,
       case when pg_temp.r(o.id, 452) < 0.5 then 'Review text ' || o.id end,
       o.placed_at + interval '7 days'
from orders.orders o
join lateral (select oi.sku_id from orders.order_items oi where oi.order_id = o.id
              order by oi.id limit 1) first_item on true
join product.skus sk on sk.id = first_item.sku_id
join product.product_suppliers ps on ps.sku_id = sk.id
where o.status in ('delivered', 'returned')
  and pg_temp.r(o.id, 451) < case when o.status = 'returned' then 0.5 else 0.15 end
order by o.id;
