-- Inventory: stock movements in and out per warehouse, replenishment (automatic and manual),
-- fast and slow movers, and storage utilisation.
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
    select sl.warehouse_id, count(*) as slow_movers
    from inventory.stock_levels st
    join inventory.storage_locations sl on sl.id = st.location_id
    where st.on_hand > 0
      and not exists (select 1 from velocity v where v.sku_id = st.sku_id)
    group by sl.warehouse_id
),
replenished as (
    select ro.warehouse_id,
           count(*) filter (where ro.is_automatic) as auto_orders,
           count(*) filter (where not ro.is_automatic) as manual_orders,
           count(*) filter (where ro.received_at > ro.expected_at) as late_receipts
    from inventory.replenishment_orders ro
    where ro.created_at >= :period_start and ro.created_at < :period_end
    group by ro.warehouse_id
),
utilisation as (
    select sl.warehouse_id, sum(coalesce(st.on_hand, 0)) as on_hand,
           sum(sl.capacity_units) as capacity
    from inventory.storage_locations sl
    left join inventory.stock_levels st on st.location_id = sl.id
    group by sl.warehouse_id
)
select
    w.name as warehouse,
    coalesce(mv.units_in, 0) as units_in,
    coalesce(mv.units_out, 0) as units_out,
    coalesce(mv.movements, 0) as movements,
    coalesce(rp.auto_orders, 0) as auto_replenishments,
    coalesce(rp.manual_orders, 0) as manual_replenishments,
    coalesce(rp.late_receipts, 0) as late_receipts,
    coalesce(mo.fast_movers, 0) as fast_movers,
    coalesce(sw.slow_movers, 0) as slow_movers,
    round(u.on_hand::numeric / nullif(u.capacity, 0), 4) as storage_utilisation
from logistics.warehouses w
join utilisation u on u.warehouse_id = w.id
left join moves mv on mv.warehouse_id = w.id
left join replenished rp on rp.warehouse_id = w.id
left join movers mo on mo.warehouse_id = w.id
left join slow sw on sw.warehouse_id = w.id
order by w.name
