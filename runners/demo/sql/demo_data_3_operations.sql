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
-- A failed payment for orders cancelled because of it; authorised but not captured for orders
-- still pending; captured when the order's payment went through.
insert into payments.payments (id, order_id, method_id, amount, currency_code, status, created_at,
                               captured_at)
select o.id, o.id, pm.id, o.total, 'EUR',
       case when t.cancelling and t.reason_id = 2 then 'failed'
            when t.paid_at is null then 'authorised' else 'captured' end,
       o.placed_at + (20 + pg_temp.r(o.id, 405) * 30) * interval '1 second', t.paid_at
from orders.orders o join tmp_orders t on t.id = o.id
left join payments.payment_methods pm on pm.id = o.account_id
order by o.id;

-- step: payments.payment_attempts
-- Every attempt of a failed payment is declined; others may succeed on the second try.
insert into payments.payment_attempts (payment_id, attempted_at, succeeded, decline_code)
select p.id, p.created_at + k * interval '30 seconds',
       not (p.status = 'failed' or (k = 0 and f.first_declined)),
       case when p.status = 'failed' or (k = 0 and f.first_declined)
            then (array['insufficient_funds','do_not_honor','expired_card'])[1 + (p.id + k) % 3] end
from payments.payments p,
     lateral (select pg_temp.r(p.id, 410) < 0.08 as first_declined) f,
     lateral generate_series(0, case when p.status = 'failed' then 2
                                     when f.first_declined then 1 else 0 end) k
order by p.id, k;

-- step: payments.refunds
-- A return is refunded once, for its items; a cancellation only when the payment was captured.
insert into payments.refunds (payment_id, return_id, amount, refunded_at)
select r.order_id, r.id, sum(ri.refund_amount), t.refunded_at
from orders.returns r join orders.return_items ri on ri.return_id = r.id
join tmp_orders t on t.id = r.order_id
where t.refunded_at is not null
group by r.order_id, r.id, t.refunded_at
union all
select c.order_id, null, c.refunded_amount, c.cancelled_at + interval '1 hour'
from cfg, orders.cancellations c join payments.payments p on p.id = c.order_id
where p.status = 'captured' and c.cancelled_at + interval '1 hour' < cfg.anchor
order by 1;

-- step: payments.chargebacks
-- Disputes of captured payments that were not refunded.
insert into payments.chargebacks (payment_id, amount, reason, opened_at, won)
select p.id, p.amount, (array['fraud','not_received','not_as_described'])[1 + p.id % 3],
       p.captured_at + (15 + pg_temp.r(p.id, 421) * 45) * interval '1 day',
       case when p.id % 2 = 0 then true end
from cfg, payments.payments p
where p.status = 'captured' and pg_temp.r(p.id, 420) < 0.002
  and p.captured_at + (15 + pg_temp.r(p.id, 421) * 45) * interval '1 day' < cfg.anchor
  and not exists (select 1 from payments.refunds rf where rf.payment_id = p.id);

-- step: payments.fees
insert into payments.fees (payment_id, amount, charged_at)
select p.id, round(p.amount * 0.014 + 0.25, 2), p.captured_at
from payments.payments p where p.status = 'captured';

-- step: tmp.payable
-- Sellers are paid monthly for what was delivered in a closed month and not returned.
create temp table tmp_payable on commit drop as
select oi.id as order_item_id, pr.seller_id, s.commission_rate,
       date_trunc('month', t.deliver_at)::date as month,
       oi.unit_price * oi.quantity - oi.discount as gross
from cfg, tmp_orders t
join orders.order_items oi on oi.order_id = t.id
join product.skus sk on sk.id = oi.sku_id
join product.products pr on pr.id = sk.product_id
join product.sellers s on s.id = pr.seller_id
where t.deliver_at is not null and t.requested_at is null
  and date_trunc('month', t.deliver_at) + interval '1 month' <= cfg.anchor;

-- step: payments.payouts
insert into payments.payouts (seller_id, period_start, period_end, amount, paid_at)
select p.seller_id, p.month, (p.month + interval '1 month' - interval '1 day')::date,
       round(sum(p.gross) * (1 - max(p.commission_rate)), 2),
       case when p.month + interval '1 month 5 days' < max(cfg.anchor)
            then p.month + interval '1 month 5 days' end
from cfg, tmp_payable p
group by p.seller_id, p.month
order by p.seller_id, p.month;

-- step: payments.payout_items
insert into payments.payout_items (payout_id, order_item_id, gross, commission)
select po.id, p.order_item_id, p.gross, round(p.gross * p.commission_rate, 2)
from tmp_payable p
join payments.payouts po on po.seller_id = p.seller_id and po.period_start = p.month
order by p.order_item_id;

-- step: logistics.shipments
-- Late deliveries concentrate at BudgetShip (carrier 3) and in Provence (region 6).
insert into logistics.shipments (id, order_id, warehouse_id, carrier_id, service_id, region_id,
                                 shipped_at, promised_at, delivered_at, shipping_cost)
select t.id, t.id, t.warehouse_id, t.carrier_id, t.service_id, t.region_id, t.ship_at,
       t.promised_at, t.deliver_at,
       round((3.5 + t.carrier_id * 0.6 + pg_temp.r(t.id, 505) * 2)::numeric, 2)
from tmp_orders t where t.ship_at is not null
order by t.id;

-- step: logistics.shipment_items
insert into logistics.shipment_items (shipment_id, order_item_id, quantity)
select s.id, oi.id, oi.quantity
from logistics.shipments s join orders.order_items oi on oi.order_id = s.order_id
order by oi.id;

-- step: logistics.delivery_events
insert into logistics.delivery_events (shipment_id, event, occurred_at, location)
select s.id, e.event, e.at, 'Hub ' || s.warehouse_id
from cfg, logistics.shipments s,
     lateral (values ('picked_up', s.shipped_at), ('in_transit', s.shipped_at + interval '8 hours'),
                     ('out_for_delivery', s.delivered_at - interval '5 hours'),
                     ('delivered', s.delivered_at)) e(event, at)
where e.at < cfg.anchor
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
-- Picked after the payment, packed before the parcel leaves.
insert into logistics.picking_tasks (order_id, warehouse_id, started_at, completed_at, items_picked)
select s.order_id, s.warehouse_id, done - (0.3 + pg_temp.r(s.id, 520) * 2) * interval '1 hour'
         - case when s.warehouse_id = 3 then interval '40 minutes' else interval '0' end,
       done, (select count(*) from logistics.shipment_items si where si.shipment_id = s.id)
from logistics.shipments s,
     lateral (select s.shipped_at - (0.2 + pg_temp.r(s.id, 521) * 0.8) * interval '1 hour' as done) d
order by s.id;

-- step: tmp.stock_events
-- Stock leaves the location of the SKU in the shipping warehouse; returns come back there.
-- Write-offs and shrinkage found by cycle counts take stock too.
create temp table tmp_stock_events on commit drop as
select e.sku_id, e.warehouse_id, e.warehouse_id * 1000 + 1 + (e.sku_id / 6) % 50 as location_id,
       e.kind, e.quantity, e.at, e.k
from (
  select i.sku_id, t.warehouse_id, 'sale' as kind, -i.quantity as quantity, t.ship_at as at, i.id as k
  from tmp_items i join tmp_orders t on t.id = i.order_id where t.ship_at is not null
  union all
  select i.sku_id, t.warehouse_id, 'return', ri.quantity, t.received_at, i.id
  from orders.return_items ri join tmp_items i on i.id = ri.order_item_id
  join tmp_orders t on t.id = i.order_id
  where ri.restockable and t.received_at is not null
  union all
  select i.sku_id, t.warehouse_id, 'write_off', -(1 + floor(pg_temp.r(i.id, 651) * 3))::int,
         t.ship_at + (1 + pg_temp.r(i.id, 652) * 40) * interval '1 day', i.id
  from cfg, tmp_items i join tmp_orders t on t.id = i.order_id
  where t.ship_at + (1 + pg_temp.r(i.id, 652) * 40) * interval '1 day' < cfg.anchor
    and pg_temp.r(i.id, 650) < cfg.n_write_offs::float8 / (1.6 * cfg.n_orders)
  union all
  -- A cycle count of the location; one in ten finds a unit missing.
  select i.sku_id, t.warehouse_id,
         case when pg_temp.r(i.id, 661) < 0.1 then 'adjustment' else 'count' end,
         -(pg_temp.r(i.id, 661) < 0.1)::int,
         t.ship_at + (1 + pg_temp.r(i.id, 662) * 30) * interval '1 day', i.id
  from cfg, tmp_items i join tmp_orders t on t.id = i.order_id
  where t.ship_at + (1 + pg_temp.r(i.id, 662) * 30) * interval '1 day' < cfg.anchor
    and pg_temp.r(i.id, 660) < 0.005 + 0.2 * cfg.n_skus::float8 / (1.6 * cfg.n_orders)
) e;

-- step: function cycle_start
-- Each supplier delivers to every warehouse every four weeks (its own phase, a day or two of
-- jitter per warehouse). A delivery brings the SKU's stock at that location up to what the
-- cycle will take plus a safety buffer; in one cycle in four the supplier has none to spare for
-- the SKU, which then runs out everywhere before the next delivery. With E the stock after a
-- cycle, not counting its returns, D what the cycle takes less the returns of the cycle
-- before, and b the buffer: E = max(E_prev - D, b), and the receipts are the steps of the
-- running maximum of (b + cumulative D).
create function pg_temp.cycle_start(start_ts timestamptz, supplier bigint, warehouse bigint, c bigint)
returns timestamptz language sql immutable as $$
  select start_ts + ((c + pg_temp.r(supplier, 615)) * 28
                     + 2 * pg_temp.r((supplier * 10 + warehouse) * 100 + c + 10, 616))
                    * interval '1 day' $$;

-- step: tmp.receipts
create temp table tmp_receipts on commit drop as
with demand as (
  -- What a cycle takes, less what came back in the cycle before (returns are shelved by then).
  select e.sku_id, e.location_id, e.warehouse_id, ps.supplier_id,
         cy.c + (e.kind = 'return')::int as c,
         -sum(e.quantity) filter (where e.kind <> 'return') as taken,
         -sum(e.quantity) as d
  from cfg, tmp_stock_events e
  join product.product_suppliers ps on ps.sku_id = e.sku_id and ps.is_primary,
  lateral (select floor(extract(epoch from e.at - cfg.start_ts) / (86400 * 28)
                        - pg_temp.r(ps.supplier_id, 615))::int as c0) c0,
  lateral (select c0.c0 - (e.at < pg_temp.cycle_start(cfg.start_ts, ps.supplier_id,
                                                       e.warehouse_id, c0.c0))::int as c) cy
  where e.kind <> 'count'
  group by 1, 2, 3, 4, 5
),
buffered as (
  select d.*, sum(d.d) over w as cum,
         case when d.taken is null or pg_temp.r(d.sku_id * 31 + d.c, 613) < 0.25 then 0
              else 1 + floor(pg_temp.r(d.sku_id * 7 + d.location_id * 31 + d.c, 614)
                             * (1 + d.taken * 0.3)) end as buffer
  from demand d
  window w as (partition by d.sku_id, d.location_id order by d.c)
),
peaks as (
  select b.*, max(b.buffer + b.cum) over w as peak
  from buffered b
  window w as (partition by b.sku_id, b.location_id order by b.c)
)
select p.sku_id, p.location_id, p.warehouse_id, p.supplier_id, p.c,
       (p.peak - coalesce(lag(p.peak) over w, 0))::int as quantity
from peaks p
window w as (partition by p.sku_id, p.location_id order by p.c)
union all
-- SKUs nobody bought still have their first delivery on the shelf of their home warehouse.
select sk.id, (1 + sk.id % 6) * 1000 + 1 + (sk.id / 6) % 50, 1 + sk.id % 6, ps.supplier_id, -2,
       (5 + floor(pg_temp.r(sk.id, 601) * 35))::int
from product.skus sk join product.product_suppliers ps on ps.sku_id = sk.id and ps.is_primary
where not exists (select 1 from tmp_stock_events e where e.sku_id = sk.id);

-- step: tmp.purchase_orders
-- One purchase order per supplier, warehouse and cycle with something to deliver; ordered the
-- supplier's lead time before it was due, a quarter of them arriving late. The next cycle's
-- orders already placed at the anchor are open.
create temp table tmp_purchase_orders on commit drop as
select row_number() over (order by x.created_at, x.supplier_id, x.warehouse_id) as id, x.*
from (
  select q.supplier_id, q.warehouse_id, q.c, q.arrive,
         q.arrive - q.late - su.lead_time_days * interval '1 day' as created_at,
         q.arrive - q.late as expected_at,
         case when q.arrive < cfg.anchor then q.arrive end as received_at,
         pg_temp.r(q.supplier_id * 1000 + q.warehouse_id * 100 + q.c + 2, 621) < 0.7 as is_automatic,
         q.is_next
  from cfg, (
    select r.supplier_id, r.warehouse_id, r.c, r.is_next,
           pg_temp.cycle_start(cfg.start_ts, r.supplier_id, r.warehouse_id, r.c) as arrive,
           case when pg_temp.r(r.supplier_id * 1000 + r.warehouse_id * 100 + r.c + 2, 622) < 0.25
                then (0.5 + 3.5 * pg_temp.r(r.supplier_id * 1000 + r.warehouse_id * 100 + r.c + 2, 623))
                else -0.5 * pg_temp.r(r.supplier_id * 1000 + r.warehouse_id * 100 + r.c + 2, 623)
                end * interval '1 day' as late
    from cfg, (select distinct supplier_id, warehouse_id, c, false as is_next
               from tmp_receipts where quantity > 0
               union all
               select supplier_id, warehouse_id, max(c) + 1, true
               from tmp_receipts group by supplier_id, warehouse_id) r
  ) q
  join product.suppliers su on su.id = q.supplier_id
) x, cfg
where x.created_at < cfg.anchor and x.is_next = (x.arrive >= cfg.anchor);

-- step: inventory.replenishment_orders
insert into inventory.replenishment_orders (id, supplier_id, warehouse_id, is_automatic, created_at,
                                            expected_at, received_at)
select id, supplier_id, warehouse_id, is_automatic, created_at, expected_at, received_at
from tmp_purchase_orders order by id;

-- step: inventory.replenishment_order_lines
-- Open orders reorder what the last cycle sold.
insert into inventory.replenishment_order_lines (order_id, sku_id, quantity, unit_cost)
select po.id, r.sku_id, r.quantity, sk.unit_cost
from tmp_purchase_orders po
join tmp_receipts r on r.supplier_id = po.supplier_id and r.warehouse_id = po.warehouse_id
                   and r.c = po.c and r.quantity > 0
join product.skus sk on sk.id = r.sku_id
where po.received_at is not null
union all
select po.id, r.sku_id, greatest(1, r.quantity), sk.unit_cost
from tmp_purchase_orders po
join tmp_receipts r on r.supplier_id = po.supplier_id and r.warehouse_id = po.warehouse_id
                   and r.c = po.c - 1
join product.skus sk on sk.id = r.sku_id
where po.received_at is null
order by 1, 2;

-- step: inventory.stock_movements
insert into inventory.stock_movements (sku_id, location_id, kind, quantity, moved_at)
select m.sku_id, m.location_id, m.kind, m.quantity, m.at
from (
  select r.sku_id, r.location_id, 'receipt' as kind, r.quantity, po.received_at as at, 0 as o, 0 as k
  from tmp_receipts r
  join tmp_purchase_orders po on po.supplier_id = r.supplier_id and po.warehouse_id = r.warehouse_id
                             and po.c = r.c
  where r.quantity > 0 and po.received_at is not null
  union all
  select e.sku_id, e.location_id, e.kind, e.quantity, e.at, 1, e.k
  from tmp_stock_events e where e.kind <> 'count'
) m
order by m.at, m.o, m.sku_id, m.k;

-- step: inventory.stock_levels
-- On hand is what the movements add up to; reserved is what paid orders not yet shipped hold.
insert into inventory.stock_levels (sku_id, location_id, on_hand, reserved, updated_at)
select m.sku_id, m.location_id, sum(m.quantity)::int,
       least(sum(m.quantity), coalesce(max(rs.units), 0))::int, max(m.moved_at)
from inventory.stock_movements m
left join (select i.sku_id, t.warehouse_id * 1000 + 1 + (i.sku_id / 6) % 50 as location_id,
                  sum(i.quantity) as units
           from tmp_items i join tmp_orders t on t.id = i.order_id
           where t.status = 'paid' group by 1, 2) rs
  on rs.sku_id = m.sku_id and rs.location_id = m.location_id
group by m.sku_id, m.location_id
order by 1, 2;

-- step: inventory.stockouts
-- Out of stock everywhere: from the movement that emptied the last location to the next one.
insert into inventory.stockouts (sku_id, started_at, ended_at)
select z.sku_id, z.moved_at, z.next_at
from (
  select m.sku_id, m.moved_at,
         sum(m.quantity) over (partition by m.sku_id order by m.moved_at, m.id) as total,
         lead(m.moved_at) over (partition by m.sku_id order by m.moved_at, m.id) as next_at
  from inventory.stock_movements m
) z
where z.total = 0
order by 2, 1;

-- step: inventory.write_offs
insert into inventory.write_offs (sku_id, quantity, cost, reason, written_off_at)
select e.sku_id, -e.quantity, sk.unit_cost * -e.quantity,
       (array['damaged','expired','lost','theft'])[1 + e.k % 4], e.at
from tmp_stock_events e join product.skus sk on sk.id = e.sku_id
where e.kind = 'write_off'
order by e.at, e.sku_id;

-- step: inventory.cycle_counts
-- Expected is what the movements say was there; counted is what was found.
insert into inventory.cycle_counts (location_id, sku_id, counted, expected, counted_at)
select e.location_id, e.sku_id, x.expected + e.quantity, x.expected, e.at
from tmp_stock_events e,
     lateral (select coalesce(sum(m.quantity), 0)::int as expected from inventory.stock_movements m
              where m.sku_id = e.sku_id and m.location_id = e.location_id and m.moved_at < e.at) x
where e.kind in ('count', 'adjustment')
order by e.at, e.sku_id;

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
-- Some tickets breach their SLA (slow first response or resolution); more in December. The
-- first answer comes after the ticket, the resolution after the first answer; what has not
-- happened by the anchor is still open.
insert into support.tickets (id, account_id, order_id, product_id, topic_id, sla_policy_id, agent_id,
                             channel, status, created_at, first_response_at, resolved_at)
select g, o.account_id, o.id,
       case when topic in (4, 7) then (select sk.product_id from orders.order_items oi
                                       join product.skus sk on sk.id = oi.sku_id
                                       where oi.order_id = o.id order by oi.id limit 1) end,
       topic, sla, 1 + floor(pg_temp.r(g, 702) * 25)::int,
       (array['email','chat','phone'])[1 + floor(pg_temp.r(g, 703) * 3)::int],
       case when resolved < cfg.anchor then 'resolved' else 'open' end,
       created, case when answered < cfg.anchor then answered end,
       case when resolved < cfg.anchor then resolved end
from cfg, generate_series(1, cfg.n_tickets) g,
     lateral (select 1 + floor(pg_temp.r(g, 700) * cfg.n_orders)::bigint as order_id) x
join orders.orders o on o.id = x.order_id,
lateral (select 1 + width_bucket(pg_temp.r(g, 701), array[0.35, 0.55, 0.65, 0.78, 0.86, 0.92, 0.97]) as topic,
                1 + width_bucket(pg_temp.r(g, 707), array[0.3, 0.85]) as sla,
                o.placed_at + (1 + pg_temp.r(g, 708) * 10) * interval '1 day' as created) t,
lateral (select case when extract(month from t.created) = 12 then 0.6 else 0.2 end as busy) b,
lateral (select first_response_minutes as first, resolution_minutes as resolve
         from support.sla_policies where id = t.sla) sla_minutes,
lateral (select t.created + (sla_minutes.first * (0.2 + pg_temp.r(g, 705) * (1.0 + b.busy)))
                            * interval '1 minute' as answered) a,
lateral (select a.answered + (sla_minutes.resolve * (0.1 + pg_temp.r(g, 706) * (0.85 + b.busy)))
                             * interval '1 minute' as resolved) r
where t.created < cfg.anchor;

-- step: support.messages
-- The customer writes, the agent answers (the first response), the customer replies, and the
-- agent closes the ticket.
insert into support.messages (ticket_id, from_agent, body, sent_at)
select t.id, m.from_agent, m.body, m.at
from cfg, support.tickets t,
     lateral (values (false, 'Hello, I have a problem with my order.', t.created_at),
                     (true, 'Thanks for reaching out, we are on it.', t.first_response_at),
                     (false, 'Thank you, any news?', t.first_response_at
                        + (t.resolved_at - t.first_response_at) * pg_temp.r(t.id, 715)),
                     (true, 'This is solved now, have a good day.', t.resolved_at)
             ) m(from_agent, body, at)
where m.at is not null and m.at < cfg.anchor
order by t.id, m.at;

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
       t.resolved_at + (1 + pg_temp.r(t.id, 723) * 47) * interval '1 hour'
from cfg, support.tickets t
where t.resolved_at is not null and pg_temp.r(t.id, 722) < 0.6
  and t.resolved_at + (1 + pg_temp.r(t.id, 723) * 47) * interval '1 hour' < cfg.anchor;

-- step: support.nps_responses
-- Asked at some point while the customer had an account.
insert into support.nps_responses (account_id, score, answered_at)
select a.id, least(10, floor(pg_temp.r(a.id, 730) * 4 + pg_temp.r(a.id, 731) * 8))::smallint,
       greatest(a.created_at, cfg.start_ts)
         + pg_temp.r(a.id, 732) * (cfg.anchor - greatest(a.created_at, cfg.start_ts))
from cfg, users.accounts a where pg_temp.r(a.id, 733) < 0.25 and a.created_at < cfg.anchor - interval '30 days';

-- step: product.reviews
-- Reviews of delivered orders, written days after delivery. Products of a few suppliers
-- (id divisible by 11) get bad reviews: the problem-products report.
insert into product.reviews (product_id, account_id, rating, body, created_at)
select sk.product_id, o.account_id,
       (case when ps.supplier_id % 11 = 0 then 1 + floor(pg_temp.r(o.id, 450) * 3)
             else least(5, 2 + floor(power(pg_temp.r(o.id, 450), 0.5) * 4)) end)::smallint,
       case when pg_temp.r(o.id, 452) < 0.5 then 'Review text ' || o.id end,
       t.deliver_at + (1 + pg_temp.r(o.id, 453) * 20) * interval '1 day'
from cfg, orders.orders o
join tmp_orders t on t.id = o.id
join lateral (select oi.sku_id from orders.order_items oi where oi.order_id = o.id
              order by oi.id limit 1) first_item on true
join product.skus sk on sk.id = first_item.sku_id
join product.product_suppliers ps on ps.sku_id = sk.id
where t.deliver_at + (1 + pg_temp.r(o.id, 453) * 20) * interval '1 day' < cfg.anchor
  and pg_temp.r(o.id, 451) < case when t.requested_at is not null then 0.5 else 0.15 end
order by o.id;
