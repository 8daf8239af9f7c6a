-- Assortment and category effectiveness: revenue and units per top-level category, share of
-- SKUs that went out of stock, days in stock, and view-to-purchase conversion.
with sales as (
    select coalesce(c.parent_id, c.id) as category_id,
           sum(oi.unit_price * oi.quantity - oi.discount) as revenue,
           sum(oi.quantity) as units,
           count(distinct o.id) as orders
    from orders.order_items oi
    join orders.orders o on o.id = oi.order_id
    join product.skus sk on sk.id = oi.sku_id
    join product.products p on p.id = sk.product_id
    join product.categories c on c.id = p.category_id
    where o.placed_at >= :period_start and o.placed_at < :period_end
      and o.status not in ('cancelled')
    group by coalesce(c.parent_id, c.id)
),
stock as (
    select coalesce(c.parent_id, c.id) as category_id,
           count(distinct sk.id) as skus,
           count(distinct so.sku_id) as skus_out_of_stock,
           coalesce(sum(extract(epoch from least(coalesce(so.ended_at, :period_end),
                                                 :period_end)
                                       - greatest(so.started_at, :period_start)) / 86400.0)
                    filter (where so.id is not null), 0) as stockout_days
    from product.skus sk
    join product.products p on p.id = sk.product_id
    join product.categories c on c.id = p.category_id
    left join inventory.stockouts so on so.sku_id = sk.id
        and so.started_at < :period_end
        and coalesce(so.ended_at, :period_end) > :period_start
    group by coalesce(c.parent_id, c.id)
),
views as (
    select coalesce(c.parent_id, c.id) as category_id, count(*) as product_views
    from analytics.product_views pv
    join product.products p on p.id = pv.product_id
    join product.categories c on c.id = p.category_id
    where pv.viewed_at >= :period_start and pv.viewed_at < :period_end
    group by coalesce(c.parent_id, c.id)
)
select
    top.name as category,
    coalesce(sa.revenue, 0) as revenue,
    coalesce(sa.units, 0) as units,
    coalesce(sa.orders, 0) as orders,
    st.skus,
    round(st.skus_out_of_stock::numeric / nullif(st.skus, 0), 4) as out_of_stock_share,
    round((extract(epoch from (:period_end)::timestamptz - (:period_start)::timestamptz) / 86400.0
           - coalesce(st.stockout_days, 0) / nullif(st.skus, 0))::numeric, 1)
        as avg_days_in_stock,
    coalesce(v.product_views, 0) as product_views,
    round(coalesce(sa.orders, 0)::numeric / nullif(v.product_views, 0), 4)
        as view_to_purchase,
    case when rank() over (order by coalesce(sa.revenue, 0) desc) <= 3 then 'leader'
         when coalesce(sa.revenue, 0) < 0.2 * avg(coalesce(sa.revenue, 0)) over ()
              then 'dead zone'
         else '' end as verdict
from product.categories top
join stock st on st.category_id = top.id
left join sales sa on sa.category_id = top.id
left join views v on v.category_id = top.id
where top.parent_id is null
order by revenue desc
