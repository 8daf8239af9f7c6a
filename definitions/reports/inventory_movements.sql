-- Inventory: stock movements in and out per warehouse, replenishment (automatic and manual),
-- late receipts, fast and slow movers, and storage utilisation.
with moves as (
    select sl.warehouse_id,
           sum(m.quantity) filter (where m.quantity > 0) as units_in,
           -sum(m.quantity) filter (where m.quantity < 0) as units_out,
           count(*) as movements
    from inventory.stock_movements m
    join inventory.storage_locations sl on sl.id = m.location_id
    where m.moved_at >= :period_start and m.moved_at < :period_end
    group by sl.warehouse_id
),
velocity as (
    select sl.warehouse_id, m.sku_id, -sum(m.quantity) as sold
    from inventory.stock_movements m
    join inventory.storage_locations sl on sl.id = m.location_id
    where m.kind = 'sale' and m.moved_at >= :period_start and m.moved_at < :period_end
    group by sl.warehouse_id, m.sku_id
),
movers as (
    select v.warehouse_id,
           count(*) filter (where v.sold >= :fast_mover_units) as fast_movers
    from velocity v
    group by v.warehouse_id
),
slow as (
    select sl.warehouse_id, count(distinct st.sku_id) as slow_movers
    from inventory.stock_levels st
    join inventory.storage_locations sl on sl.id = st.location_id
    where st.on_hand > 0
      and not exists (select 1 from velocity v
                      where v.sku_id = st.sku_id and v.warehouse_id = sl.warehouse_id)
    group by sl.warehouse_id
),
created as (
    select ro.warehouse_id,
           count(*) filter (where ro.is_automatic) as auto_orders,
           count(*) filter (where not ro.is_automatic) as manual_orders
    from inventory.replenishment_orders ro
    where ro.created_at >= :period_start and ro.created_at < :period_end
    group by ro.warehouse_id
),
late as (
    -- Receipts due or received in the week that came after their date, or not at all.
    select ro.warehouse_id, count(*) as late_receipts
    from inventory.replenishment_orders ro
    where ((ro.expected_at >= :period_start and ro.expected_at < :period_end)
           or (ro.received_at >= :period_start and ro.received_at < :period_end))
      and (ro.received_at is null or ro.received_at > ro.expected_at)
    group by ro.warehouse_id
),
stock as (
    select sl.warehouse_id, sum(st.on_hand) as on_hand
    from inventory.stock_levels st
    join inventory.storage_locations sl on sl.id = st.location_id
    group by sl.warehouse_id
),
capacity as (
    -- Each location once, however many SKUs it holds.
    select sl.warehouse_id, sum(sl.capacity_units) as capacity
    from inventory.storage_locations sl
    group by sl.warehouse_id
)
select
    w.name as warehouse,
    coalesce(mv.units_in, 0) as units_in,
    coalesce(mv.units_out, 0) as units_out,
    coalesce(mv.movements, 0) as movements,
    coalesce(cr.auto_orders, 0) as auto_replenishments,
    coalesce(cr.manual_orders, 0) as manual_replenishments,
    coalesce(lt.late_receipts, 0) as late_receipts,
    coalesce(mo.fast_movers, 0) as fast_movers,
    coalesce(sw.slow_movers, 0) as slow_movers,
    round(coalesce(sk.on_hand, 0)::numeric / nullif(ca.capacity, 0), 4) as storage_utilisation
from logistics.warehouses w
join capacity ca on ca.warehouse_id = w.id
left join stock sk on sk.warehouse_id = w.id
left join moves mv on mv.warehouse_id = w.id
left join created cr on cr.warehouse_id = w.id
left join late lt on lt.warehouse_id = w.id
left join movers mo on mo.warehouse_id = w.id
left join slow sw on sw.warehouse_id = w.id
order by w.name collate "C"
