-- Logistics delays and delivery SLA by carrier and region: picking and delivery times, late
-- share and the most frequent delay reason.
with shipped as (
    -- Durations stay in exact seconds (numeric epoch); hours are divided out once, at the
    -- end, so an exact half rounds away from zero.
    select d.shipment_id, d.carrier_id, d.region_id, d.is_late,
           extract(epoch from d.delivered_at - d.shipped_at) as delivery_seconds,
           pk.picking_seconds
    from deliveries d
    left join (select pt.order_id,
                      -- An order's mean at 30 decimals: far finer than any half the final
                      -- 2-decimal rounding can meet (see avg_picking_hours).
                      round(sum(extract(epoch from pt.completed_at - pt.started_at)), 30)
                          / count(*) as picking_seconds
               from logistics.picking_tasks pt
               where pt.completed_at is not null
               group by pt.order_id) pk on pk.order_id = d.order_id
    where d.delivered_at >= :period_start and d.delivered_at < :period_end
),
reasons as (
    select sh.carrier_id, sh.region_id, dr.label,
           row_number() over (partition by sh.carrier_id, sh.region_id
                              order by count(*) desc, dr.label collate "C") as rank
    from shipped sh
    join logistics.shipment_delays sd on sd.shipment_id = sh.shipment_id
    join logistics.delay_reasons dr on dr.id = sd.reason_id
    group by sh.carrier_id, sh.region_id, dr.label
)
select
    c.name as carrier,
    r.name as region,
    count(*) as deliveries,
    -- The orders' means may repeat (n tasks); at 30 decimals their mean is within 1e-28 of
    -- the exact value, whose denominator is small, so rounding to 20 decimals restores it
    -- exactly before the rounding to 2.
    round(round(sum(sh.picking_seconds) / (3600 * count(sh.picking_seconds)), 20), 2)
        as avg_picking_hours,
    round(sum(sh.delivery_seconds) / (3600 * count(sh.delivery_seconds)), 2)
        as avg_delivery_hours,
    count(*) filter (where sh.is_late) as late_deliveries,
    round(count(*) filter (where sh.is_late)::numeric / count(*), 4) as late_share,
    max(rs.label) as top_delay_reason
from shipped sh
join logistics.carriers c on c.id = sh.carrier_id
join ref.regions r on r.id = sh.region_id
left join reasons rs on rs.carrier_id = sh.carrier_id and rs.region_id = sh.region_id
    and rs.rank = 1
group by c.name, r.id, r.name
order by late_share desc, deliveries desc, c.name collate "C", r.name collate "C"
