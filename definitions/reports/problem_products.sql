-- The most problematic products and their suppliers: returns, complaints, bad reviews and
-- late deliveries in the period, ranked by a combined score.
with returned as (
    -- A return with several items of the product counts once.
    select sk.product_id, count(distinct r.id) as returns
    from orders.return_items ri
    join orders.returns r on r.id = ri.return_id
    join orders.order_items oi on oi.id = ri.order_item_id
    join product.skus sk on sk.id = oi.sku_id
    where r.requested_at >= :period_start and r.requested_at < :period_end
    group by sk.product_id
),
complaints as (
    select t.product_id, count(*) as complaints
    from support.tickets t
    where t.product_id is not null
      and t.created_at >= :period_start and t.created_at < :period_end
    group by t.product_id
),
bad_reviews as (
    select rv.product_id, count(*) as bad_reviews
    from product.reviews rv
    where rv.rating <= 2 and rv.created_at >= :period_start and rv.created_at < :period_end
    group by rv.product_id
),
late as (
    select sk.product_id, count(distinct d.shipment_id) as late_deliveries
    from deliveries d
    join orders.order_items oi on oi.order_id = d.order_id
    join product.skus sk on sk.id = oi.sku_id
    where d.is_late
      and d.delivered_at >= :period_start and d.delivered_at < :period_end
    group by sk.product_id
),
scored as (
    select p.id as product_id, p.title,
           coalesce(re.returns, 0) as returns, coalesce(co.complaints, 0) as complaints,
           coalesce(br.bad_reviews, 0) as bad_reviews,
           coalesce(la.late_deliveries, 0) as late_deliveries,
           3 * coalesce(re.returns, 0) + 2 * coalesce(co.complaints, 0)
             + 2 * coalesce(br.bad_reviews, 0) + coalesce(la.late_deliveries, 0) as score
    from product.products p
    left join returned re on re.product_id = p.id
    left join complaints co on co.product_id = p.id
    left join bad_reviews br on br.product_id = p.id
    left join late la on la.product_id = p.id
)
select
    sc.product_id,
    sc.title,
    sup.name as supplier,
    sc.returns,
    sc.complaints,
    sc.bad_reviews,
    sc.late_deliveries,
    sc.score
from scored sc
left join lateral (
    select s.name
    from product.skus sk
    join product.product_suppliers ps on ps.sku_id = sk.id and ps.is_primary
    join product.suppliers s on s.id = ps.supplier_id
    where sk.product_id = sc.product_id
    order by sk.id, s.id
    limit 1
) sup on true
where sc.score > 0
order by sc.score desc, sc.product_id
limit :top
